// What the fuzz targets share: a property check that aborts with a message (libFuzzer
// then saves the input as a crash), and in-memory files for readers that take a path or
// a descriptor.
#ifndef FORKLIFT_FUZZ_FUZZ_CHECK_H_
#define FORKLIFT_FUZZ_FUZZ_CHECK_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Not assert(): it must hold in release builds too.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace forklift::fuzz {

// A memfd holding `bytes`, positioned at 0; closed by the destructor. path() names it
// for readers that open a path.
class MemFile {
 public:
  explicit MemFile(std::string_view bytes) {
    fd_ = memfd_create("fuzz", 0);
    FUZZ_CHECK(fd_ >= 0);
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
      FUZZ_CHECK(n > 0);
      done += static_cast<size_t>(n);
    }
    FUZZ_CHECK(lseek(fd_, 0, SEEK_SET) == 0);
  }
  ~MemFile() { close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  int fd() const { return fd_; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

// Takes bytes off the front of the input to choose options, the rest being the payload.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : s_(reinterpret_cast<const char*>(data), size) {}
  uint8_t Byte() {
    if (s_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(s_[0]);
    s_.remove_prefix(1);
    return b;
  }
  // Up to the next `sep` (consumed), or the rest.
  std::string_view Until(char sep) {
    size_t i = s_.find(sep);
    std::string_view out = s_.substr(0, i);
    s_.remove_prefix(i == std::string_view::npos ? s_.size() : i + 1);
    return out;
  }
  std::string_view Rest() const { return s_; }
  bool empty() const { return s_.empty(); }

 private:
  std::string_view s_;
};

}  // namespace forklift::fuzz

#endif  // FORKLIFT_FUZZ_FUZZ_CHECK_H_
