#include "process/output_buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace forklift::process {
namespace {

constexpr size_t kChunk = 64 * 1024;

using core::ErrnoText;

// Writes all of data, retrying short writes and EINTR, waiting on a non-blocking fd.
Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w > 0) {
      data += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) {
        return InternalError("output: poll: " + ErrnoText(errno));
      }
      continue;
    }
    return InternalError("output: write to fd " + std::to_string(fd) + ": " +
                         ErrnoText(w < 0 ? errno : EIO));
  }
  return OkStatus();
}

// An unlinked read-write file in `dir`: O_TMPFILE where the file system has it, else
// mkstemp and an unlink right away (a window of microseconds in which a SIGKILL would
// leave the file behind, against none with O_TMPFILE).
Result<core::UniqueFd> OpenAnonymousFile(const std::string& dir) {
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  // EOPNOTSUPP/EISDIR/EINVAL mean no O_TMPFILE on this file system or kernel; any other
  // error (ENOENT, EACCES) fails mkostemp too, which then names it.
  if (fd >= 0) return core::UniqueFd(fd);
  std::string path = dir + "/forklift-output-XXXXXX";
  fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    return InternalError("output: cannot create a temporary file in '" + dir +
                         "': " + ErrnoText(errno));
  }
  unlink(path.c_str());
  return core::UniqueFd(fd);
}

}  // namespace

OutputBuffer::OutputBuffer(size_t memory_limit, std::string spill_dir)
    : memory_limit_(memory_limit), spill_dir_(std::move(spill_dir)) {}

OutputBuffer::~OutputBuffer() = default;

OutputBuffer::OutputBuffer(OutputBuffer&& other) noexcept
    : memory_limit_(other.memory_limit_),
      spill_dir_(std::move(other.spill_dir_)),
      ram_(std::move(other.ram_)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::move(other.fd_)) {}

OutputBuffer& OutputBuffer::operator=(OutputBuffer&& other) noexcept {
  if (this != &other) {
    memory_limit_ = other.memory_limit_;
    spill_dir_ = std::move(other.spill_dir_);
    ram_ = std::move(other.ram_);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::move(other.fd_);
  }
  return *this;
}

Status OutputBuffer::Append(std::string_view bytes) {
  if (bytes.empty()) return OkStatus();
  if (fd_.valid()) {
    // The file offset is always at the end: reads use pread.
    FORKLIFT_RETURN_IF_ERROR(WriteAll(fd_.get(), bytes.data(), bytes.size()));
    size_ += bytes.size();
    return OkStatus();
  }
  size_t needed = ram_.size() + bytes.size();
  if (needed > memory_limit_) return Spill(bytes);
  if (needed > ram_.capacity()) {
    // Geometric growth, but never past the limit.
    size_t grown = std::max({needed, 2 * ram_.capacity(), size_t{4096}});
    ram_.reserve(std::min(grown, memory_limit_));
  }
  ram_.insert(ram_.end(), bytes.begin(), bytes.end());
  size_ += bytes.size();
  return OkStatus();
}

Status OutputBuffer::Spill(std::string_view more) {
  std::string dir = spill_dir_;
  if (dir.empty()) {
    const char* tmpdir = getenv("TMPDIR");
    dir = tmpdir != nullptr && tmpdir[0] != '\0' ? tmpdir : "/tmp";
  }
  FORKLIFT_ASSIGN_OR_RETURN(core::UniqueFd fd, OpenAnonymousFile(dir));
  Status written = WriteAll(fd.get(), ram_.data(), ram_.size());
  if (written) written = WriteAll(fd.get(), more.data(), more.size());
  if (!written) return written;
  fd_ = std::move(fd);
  size_ += more.size();
  std::vector<char>().swap(ram_);  // give the RAM back now, not at destruction
  return OkStatus();
}

Status OutputBuffer::ReadAt(uint64_t offset, char* out, size_t n) const {
  while (n > 0) {
    ssize_t r = pread(fd_.get(), out, n, static_cast<off_t>(offset));
    if (r > 0) {
      out += r;
      n -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    return InternalError("output: reading the temporary file: " +
                         (r < 0 ? ErrnoText(errno) : std::string("unexpected end")));
  }
  return OkStatus();
}

Status OutputBuffer::WriteTo(int fd) const {
  if (!fd_.valid()) return WriteAll(fd, ram_.data(), ram_.size());
  char chunk[kChunk];
  for (uint64_t offset = 0; offset < size_;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size_ - offset));
    FORKLIFT_RETURN_IF_ERROR(ReadAt(offset, chunk, n));
    FORKLIFT_RETURN_IF_ERROR(WriteAll(fd, chunk, n));
    offset += n;
  }
  return OkStatus();
}

Result<std::string> OutputBuffer::ReadAll() const {
  if (!fd_.valid()) return std::string(ram_.data(), ram_.size());
  std::string out(static_cast<size_t>(size_), '\0');
  FORKLIFT_RETURN_IF_ERROR(ReadAt(0, out.data(), out.size()));
  return out;
}

void OutputBuffer::Clear() {
  fd_.reset();
  std::vector<char>().swap(ram_);
  size_ = 0;
}

}  // namespace forklift::process
