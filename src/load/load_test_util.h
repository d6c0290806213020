// Test helpers for the load tests: a temporary directory with files. Test-only.
#ifndef FORKLIFT_LOAD_LOAD_TEST_UTIL_H_
#define FORKLIFT_LOAD_LOAD_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace forklift::load::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/forklift-load-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& data) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
    return p;
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace forklift::load::testing

#endif  // FORKLIFT_LOAD_LOAD_TEST_UTIL_H_
