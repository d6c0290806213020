#include "map/map_output.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace forklift::map {
namespace {

Status WriteAllTo(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return InternalError(std::string("forklift map: writing output: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

}  // namespace

Status OutputWriter::Write(process::Stream stream, std::string_view bytes) {
  std::lock_guard lock(mu_);
  return WriteAllTo(fds_[stream == process::Stream::kStdout ? 0 : 1], bytes);
}

Status OutputWriter::Write(process::Stream stream, const process::OutputBuffer& buffer) {
  std::lock_guard lock(mu_);
  return buffer.WriteTo(fds_[stream == process::Stream::kStdout ? 0 : 1]);
}

process::OutputMode JobOutput::SubprocessMode() const {
  if (mode_ == OutputGrouping::kUngroup) return process::OutputMode::kInherit;
  if (mode_ == OutputGrouping::kGroup && tag_.empty()) return process::OutputMode::kCapture;
  return process::OutputMode::kCallback;
}

Status JobOutput::OnChunk(process::Stream stream, std::string_view bytes) {
  int i = Index(stream);
  std::string tagged;
  std::string_view out = bytes;
  if (!tag_.empty()) {
    tagged.reserve(bytes.size() + tag_.size() + 1);
    for (char c : bytes) {
      if (at_line_start_[i]) {
        tagged += tag_;
        tagged += '\t';
      }
      tagged += c;
      at_line_start_[i] = (c == '\n');
    }
    out = tagged;
  }
  if (mode_ == OutputGrouping::kGroup) return buffers_[i].Append(out);
  // Line-buffered: write everything up to the last newline now, keep the rest.
  std::string& pending = pending_[i];
  size_t last_nl = out.rfind('\n');
  if (last_nl == std::string_view::npos) {
    pending.append(out);
    return OkStatus();
  }
  pending.append(out.substr(0, last_nl + 1));
  Status s = writer_->Write(stream, pending);
  pending.assign(out.substr(last_nl + 1));
  return s;
}

Status JobOutput::Finish(const process::Completion* captured) {
  const process::Stream streams[2] = {process::Stream::kStdout, process::Stream::kStderr};
  for (int i = 0; i < 2; ++i) {
    if (mode_ == OutputGrouping::kGroup) {
      const process::OutputBuffer& b =
          (captured && tag_.empty()) ? (i == 0 ? captured->stdout_output : captured->stderr_output)
                                     : buffers_[i];
      if (!b.empty()) FORKLIFT_RETURN_IF_ERROR(writer_->Write(streams[i], b));
    } else if (mode_ == OutputGrouping::kLineBuffer && !pending_[i].empty()) {
      FORKLIFT_RETURN_IF_ERROR(writer_->Write(streams[i], pending_[i]));
      pending_[i].clear();
    }
  }
  return OkStatus();
}

}  // namespace forklift::map
