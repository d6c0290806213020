// One temporary directory per test, for every module's unit tests: made fresh under
// $TMPDIR (else /tmp), removed with whatever is left in it when the object goes, its
// permissions restored first (a test that made it read-only still cleans up). Test-only;
// header-only, so that a module's tests need no library for it.
#ifndef FORKLIFT_TESTS_SUPPORT_TEMP_DIR_H_
#define FORKLIFT_TESTS_SUPPORT_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace forklift::test_support {

class TempDir {
 public:
  // `prefix` names the directory (PREFIX-XXXXXX), so a test's leftovers say whose they are.
  // A directory that cannot be made fails the test (path() is then empty).
  explicit TempDir(std::string_view prefix = "forklift-test") {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string tmpl = (base / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
      return;
    }
    path_ = tmpl;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(
             path_, std::filesystem::directory_options::skip_permission_denied, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) {
        std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
      }
    }
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // PATH/name (no file is made).
  std::string Path(std::string_view name) const { return path_ + "/" + std::string(name); }
  // Writes `data` to PATH/name (replacing it) and returns that path.
  std::string Write(std::string_view name, std::string_view data) const {
    std::string p = Path(name);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace forklift::test_support

#endif  // FORKLIFT_TESTS_SUPPORT_TEMP_DIR_H_
