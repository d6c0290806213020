#include "forklift/version.h"

#include <gtest/gtest.h>

#include <string>

namespace forklift {
namespace {

TEST(Version, LibraryMatchesHeaders) {
  EXPECT_EQ(std::string(LibraryVersion()), FORKLIFT_VERSION_STRING);
  EXPECT_EQ(std::string(FORKLIFT_VERSION_STRING), std::to_string(FORKLIFT_VERSION_MAJOR) + "." +
                                                      std::to_string(FORKLIFT_VERSION_MINOR) + "." +
                                                      std::to_string(FORKLIFT_VERSION_PATCH));
  EXPECT_EQ(FORKLIFT_VERSION,
            FORKLIFT_VERSION_MAJOR * 10000 + FORKLIFT_VERSION_MINOR * 100 + FORKLIFT_VERSION_PATCH);
}

}  // namespace
}  // namespace forklift
