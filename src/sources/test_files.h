// Test helpers for the sources tests: temporary files and gzip bytes. Test-only.
#ifndef FORKLIFT_SOURCES_TEST_FILES_H_
#define FORKLIFT_SOURCES_TEST_FILES_H_

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <string>

namespace forklift::sources::testing {

// A temporary file holding `data`; removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& data) {
    char tmpl[] = "/tmp/forklift-sources-test-XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    size_t off = 0;
    while (fd >= 0 && off < data.size()) {
      ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    if (fd >= 0) ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `data` as one gzip member, made with zlib.
inline std::string Gzip(const std::string& data, int level = 6) {
  z_stream z;
  std::memset(&z, 0, sizeof(z));
  deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace forklift::sources::testing

#endif  // FORKLIFT_SOURCES_TEST_FILES_H_
