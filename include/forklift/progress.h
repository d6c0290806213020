// Progress as every front door reports it: a callback value, and a display on stderr.
// Thread safety: plain values.
#ifndef FORKLIFT_PROGRESS_H_
#define FORKLIFT_PROGRESS_H_

#include <cstdint>
#include <optional>

#include "forklift/clock.h"

namespace forklift {

// Handed to on_progress after every completion.
struct Progress {
  uint64_t completed = 0;  // outcomes so far (succeeded + failed)
  uint64_t total = 0;      // items in all, 0 when the input's size is unknown
  uint64_t failed = 0;
  double rate = 0;              // completions per second over the run so far
  std::optional<Duration> eta;  // nullopt when total is unknown or rate is 0
};

enum class ProgressDisplay {
  kAuto,   // a bar on stderr when it is a TTY, plain periodic lines otherwise
  kBar,    // always the bar
  kLines,  // always plain lines, every progress interval
  kNone,   // nothing on stderr (callbacks still run)
};

}  // namespace forklift

#endif  // FORKLIFT_PROGRESS_H_
