// forklift::LibraryVersion(): the version this library was built as (forklift/version.h).
#include "forklift/version.h"

namespace forklift {

const char* LibraryVersion() noexcept { return FORKLIFT_VERSION_STRING; }

}  // namespace forklift
