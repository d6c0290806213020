#include "sources/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace forklift::sources {
namespace {

constexpr size_t kInputBufferSize = size_t{256} << 10;

using core::ErrnoText;

}  // namespace

ByteSource::ByteSource(std::string path, int fd, uint64_t file_size)
    : path_(std::move(path)),
      fd_(fd),
      file_size_(file_size),
      input_(fd >= 0 ? new char[kInputBufferSize] : nullptr) {}

ByteSource::~ByteSource() {
  if (stream_ != nullptr) inflateEnd(stream_.get());
}

Result<std::unique_ptr<ByteSource>> ByteSource::Open(const std::string& path) {
  int fd;
  if (path == "-") {
    fd = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
  } else {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    int err = errno;
    std::string message = fmt::format("cannot open '{}': {}", path, ErrnoText(err));
    if (err == ENOENT || err == ENOTDIR) return NotFoundError(std::move(message));
    return InvalidArgumentError(std::move(message));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    core::CloseFd(fd);
    return InvalidArgumentError(fmt::format("cannot open '{}': {}", path, ErrnoText(err)));
  }
  if (S_ISDIR(st.st_mode)) {
    core::CloseFd(fd);
    return InvalidArgumentError(fmt::format("cannot open '{}': {}", path, ErrnoText(EISDIR)));
  }
  uint64_t size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  if (S_ISREG(st.st_mode)) {
    // Advice only; the kernel's read-ahead doubles for sequential access.
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  std::unique_ptr<ByteSource> source(new ByteSource(path, fd, size));

  // A pipe may deliver the two magic bytes in separate reads.
  while (source->input_end_ < 2 && !source->input_eof_) {
    FORKLIFT_RETURN_IF_ERROR(source->FillInput());
  }
  if (source->input_end_ >= 2 && static_cast<unsigned char>(source->input_[0]) == 0x1f &&
      static_cast<unsigned char>(source->input_[1]) == 0x8b) {
    auto stream = std::make_unique<z_stream_s>();
    std::memset(stream.get(), 0, sizeof(z_stream_s));
    // 16 + MAX_WBITS: gzip wrapper only (the magic says so) with the largest window.
    if (inflateInit2(stream.get(), 16 + MAX_WBITS) != Z_OK) {
      return InternalError(fmt::format("{}: cannot initialise zlib", path));
    }
    stream->next_in = reinterpret_cast<Bytef*>(source->input_.get());
    stream->avail_in = static_cast<uInt>(source->input_end_);
    source->stream_ = std::move(stream);
  }
  return source;
}

std::unique_ptr<ByteSource> ByteSource::FromPull(std::string name, Pull pull) {
  std::unique_ptr<ByteSource> source(new ByteSource(std::move(name), -1, 0));
  source->pull_ = std::move(pull);
  return source;
}

tl::unexpected<Error> ByteSource::Fail(std::string what) {
  error_ = fmt::format("{}: {}", path_, what);
  return DataLossError(error_);
}

Status ByteSource::FillInput() {
  if (stream_ != nullptr) {
    // Keep what inflate has not consumed yet at the front.
    size_t left = stream_->avail_in;
    if (left > 0 && reinterpret_cast<char*>(stream_->next_in) != input_.get()) {
      std::memmove(input_.get(), stream_->next_in, left);
    }
    input_begin_ = 0;
    input_end_ = left;
  } else if (input_begin_ == input_end_) {
    input_begin_ = input_end_ = 0;
  }
  for (;;) {
    ssize_t n = ::read(fd_.get(), input_.get() + input_end_, kInputBufferSize - input_end_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(fmt::format("read failed: {}", ErrnoText(errno)));
    if (n == 0) input_eof_ = true;
    input_end_ += static_cast<size_t>(n);
    file_bytes_read_ += static_cast<uint64_t>(n);
    break;
  }
  if (stream_ != nullptr) {
    stream_->next_in = reinterpret_cast<Bytef*>(input_.get());
    stream_->avail_in = static_cast<uInt>(input_end_);
  }
  return OkStatus();
}

Result<size_t> ByteSource::Read(char* buf, size_t n) {
  if (pull_error_) return tl::unexpected(*pull_error_);
  if (!error_.empty()) return DataLossError(error_);
  if (done_ || n == 0) return size_t{0};
  if (pull_) {
    Result<size_t> got = pull_(buf, n);
    if (!got) {
      // A server's error keeps its code (a query that fails is not lost data).
      Error e = got.error();
      e.message = fmt::format("{}: {}", path_, e.message);
      pull_error_ = e;
      return tl::unexpected(std::move(e));
    }
    if (*got == 0) done_ = true;
    plain_bytes_out_ += *got;
    return *got;
  }
  return stream_ != nullptr ? ReadCompressed(buf, n) : ReadPlain(buf, n);
}

Result<size_t> ByteSource::ReadPlain(char* buf, size_t n) {
  // First the bytes Open read to look for the magic, then straight into the caller's
  // buffer: no extra copy on the hot path.
  if (input_begin_ < input_end_) {
    size_t k = std::min(n, input_end_ - input_begin_);
    std::memcpy(buf, input_.get() + input_begin_, k);
    input_begin_ += k;
    plain_bytes_out_ += k;
    return k;
  }
  if (input_eof_) {
    done_ = true;
    return size_t{0};
  }
  for (;;) {
    ssize_t got = ::read(fd_.get(), buf, n);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Fail(fmt::format("read failed: {}", ErrnoText(errno)));
    }
    if (got == 0) {
      input_eof_ = done_ = true;
      return size_t{0};
    }
    file_bytes_read_ += static_cast<uint64_t>(got);
    plain_bytes_out_ += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
}

Result<size_t> ByteSource::ReadCompressed(char* buf, size_t n) {
  z_stream_s& z = *stream_;
  // uInt is 32 bits; one call never needs more.
  size_t want = std::min<size_t>(n, size_t{1} << 30);
  z.next_out = reinterpret_cast<Bytef*>(buf);
  z.avail_out = static_cast<uInt>(want);
  while (z.avail_out == want) {
    if (member_ended_) {
      if (z.avail_in == 0 && !input_eof_) FORKLIFT_RETURN_IF_ERROR(FillInput());
      if (z.avail_in == 0) {
        done_ = true;
        return size_t{0};
      }
      // More bytes after a member: they must be another member (checked by inflate).
      inflateReset(&z);
      member_ended_ = false;
    }
    if (z.avail_in == 0 && !input_eof_) FORKLIFT_RETURN_IF_ERROR(FillInput());
    int rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      member_ended_ = true;
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) {
      if (input_eof_) return Fail("truncated gzip stream (unexpected end of file)");
      continue;  // refilled at the top of the loop
    }
    const char* msg = z.msg != nullptr ? z.msg : "unknown zlib error";
    return Fail(fmt::format("corrupt gzip stream: {}", msg));
  }
  return want - z.avail_out;
}

uint64_t ByteSource::source_bytes_read() const {
  if (stream_ != nullptr) return file_bytes_read_ - stream_->avail_in;
  return plain_bytes_out_;
}

}  // namespace forklift::sources
