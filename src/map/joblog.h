// GNU parallel's --joblog: the writer, and the reader that --resume, --resume-failed and
// --retry-failed consult.
//
// The format, byte for byte as GNU parallel 20221122 writes it:
//
//   Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand
//   1\t:\t1795423652.276\t     0.102\t0\t2\t0\t0\tsleep 0.1; echo a
//
// Host is ":" (this machine). Starttime is Unix time with 3 decimals (rounded);
// JobRuntime is seconds with 3 decimals (truncated), right-aligned in 10 columns
// (printf "%10.3f"). Send is 0; Receive is the bytes of output. Exitval is the exit
// status (0 when a signal ended the job) and Signal the signal number. A newline in the
// command is written as NUL so that one job is one line. Only a job's last attempt is
// logged (GNU parallel with --retries does the same).
#ifndef FORKLIFT_MAP_JOBLOG_H_
#define FORKLIFT_MAP_JOBLOG_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::map {

struct JoblogEntry {
  uint64_t seq = 0;
  std::string host = ":";
  std::chrono::system_clock::time_point start_time{};  // wall clock, when the job started
  Duration runtime{0};
  uint64_t send = 0;
  uint64_t receive = 0;  // bytes the job wrote to stdout and stderr
  int exit_value = 0;    // WEXITSTATUS, or 0 when killed by a signal
  int signal = 0;        // WTERMSIG, or 0
  std::string command;   // the command line as run
};

// "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n".
std::string_view JoblogHeader();

// One joblog line for `entry`, '\n' included. Never fails. Thread-safe.
std::string FormatJoblogRow(const JoblogEntry& entry);

enum class JoblogMode {
  kTruncate,  // a new log: truncate and write the header (a plain --joblog FILE)
  kResume,    // --resume, --resume-failed, --retry-failed: append to an existing,
              // non-empty log; start a new one (with header) if there is none
  kAppend,    // --joblog +FILE: append, never write a header
};

class JoblogWriter {
 public:
  // Opens (creating as needed) `path`; "-" is stdout. On failure returns
  // InvalidArgument "forklift map: cannot write to --joblog 'X': <reason>".
  static Result<std::unique_ptr<JoblogWriter>> Open(const std::string& path, JoblogMode mode);
  ~JoblogWriter();
  JoblogWriter(const JoblogWriter&) = delete;
  JoblogWriter& operator=(const JoblogWriter&) = delete;

  // Appends one row with a single write(2), so a row is on disk (in the page cache)
  // before Append returns and a killed forklift leaves no half-row behind a finished
  // job. On failure returns Internal naming the file. Thread-safe.
  Status Append(const JoblogEntry& entry);

 private:
  JoblogWriter(std::string path, int fd, bool owns_fd)
      : path_(std::move(path)), fd_(fd), owns_fd_(owns_fd) {}
  Status WriteAll(std::string_view data);

  std::mutex mu_;
  std::string path_;
  int fd_;
  bool owns_fd_;
};

// What an earlier run recorded, for --resume (skip every seq with a row),
// --resume-failed (skip the seqs that succeeded) and --retry-failed (rerun the stored
// commands of the seqs that did not succeed, ignoring the input). Memory: linear in the
// rows read (a byte per seq up to a few times the row count, a hash entry per row
// beyond), plus the commands of failed rows; never a function of the largest seq alone.
class JoblogHistory {
 public:
  // The largest seq a joblog may name; more is taken as a corrupt log.
  static constexpr uint64_t kMaxSeq = uint64_t{1} << 28;

  // Reads `path`, line by line. A missing file is an empty history (GNU parallel starts
  // afresh). A line that is neither a row nor one GNU parallel tolerates returns
  // InvalidArgument "forklift map: format of --joblog 'X' is wrong: <line>"; an
  // unreadable file returns InvalidArgument naming it. Thread-safe.
  static Result<JoblogHistory> Read(const std::string& path);
  // The same for contents already in memory; `path` only names them in errors.
  static Result<JoblogHistory> Parse(std::string_view contents, std::string_view path);

  // Whether some row has this seq (--resume skips it).
  bool Ran(uint64_t seq) const { return (Flags(seq) & kRan) != 0; }
  // Whether some row with this seq has Exitval 0 and Signal 0, both written exactly "0"
  // (GNU parallel's test; --resume-failed and --retry-failed skip it).
  bool Succeeded(uint64_t seq) const { return (Flags(seq) & kSucceeded) != 0; }
  // --retry-failed's jobs: for each seq with rows but no success, the command of its last
  // full row (newlines restored), in seq order.
  std::vector<std::pair<uint64_t, std::string>> FailedCommands() const;
  // Rows read (header excluded).
  uint64_t rows() const { return rows_; }

 private:
  static constexpr uint8_t kRan = 1;
  static constexpr uint8_t kSucceeded = 2;

  Status AddLine(std::string_view line, bool first_line, std::string_view path);
  uint8_t Flags(uint64_t seq) const;
  uint8_t& FlagsFor(uint64_t seq);

  // Flags by seq: dense for the seqs a log of this many rows plausibly holds (1..N, a few
  // gaps), sparse beyond, so memory follows the rows read, never the largest seq (a
  // 174-byte log naming seq 10^8 costs a few bytes, not 100 MB).
  std::vector<uint8_t> flags_;
  std::unordered_map<uint64_t, uint8_t> sparse_flags_;
  std::map<uint64_t, std::string> failed_commands_;  // by seq: last failed full row
  uint64_t rows_ = 0;
};

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_JOBLOG_H_
