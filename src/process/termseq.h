// TermSeq: how a subprocess's process group is brought down, after GNU parallel's
// --termseq. "TERM,200,TERM,100,TERM,50,KILL,25" means: send SIGTERM to the group, give
// it 200 ms to go away, send SIGTERM again, 100 ms, SIGTERM, 50 ms, SIGKILL, 25 ms. A
// group that is gone early ends the sequence early. Whoever applies a TermSeq (Run, on a
// timeout or a stop request) sends a last SIGKILL when a group outlives the sequence, so a
// sequence without KILL still never leaves a process behind.
//
// Thread safety: a plain value.
#ifndef FORKLIFT_PROCESS_TERMSEQ_H_
#define FORKLIFT_PROCESS_TERMSEQ_H_

#include <string>
#include <string_view>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::process {

struct TermSeq {
  struct Step {
    int signal = 0;    // 1 .. NSIG-1
    Duration wait{0};  // how long to wait for the group to be gone before the next step
    friend bool operator==(const Step&, const Step&) = default;
  };

  // Never empty in a TermSeq made by Default() or Parse().
  std::vector<Step> steps;

  // GNU parallel's default, "TERM,200,TERM,100,TERM,50,KILL,25". Thread-safe.
  static TermSeq Default();

  // Parses "SIG,ms,SIG,ms,...". A signal is a name with or without "SIG" in any case
  // ("TERM", "sigkill") or a number (15); a wait is a whole number of milliseconds. The
  // last wait may be left out (it is then 0).
  // Success: the sequence. Failure: InvalidArgument naming the bad token and its place
  // ("termseq: unknown signal 'NOPE' (token 1 of \"NOPE,1\")"), also for an empty text
  // or an empty token. Thread-safe.
  static Result<TermSeq> Parse(std::string_view text);

  // The canonical text ("TERM,200,KILL,25") that Parse reads back to an equal value.
  std::string ToString() const;

  friend bool operator==(const TermSeq&, const TermSeq&) = default;
};

// "TERM", "sigterm", "SIGTERM" or "15" -> 15. Failure: InvalidArgument naming the text.
// Thread-safe.
Result<int> ParseSignal(std::string_view text);

// 15 -> "TERM"; a signal without a short name (real-time ones) -> its number as text.
// Thread-safe.
std::string SignalName(int signal);

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_TERMSEQ_H_
