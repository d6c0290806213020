#include "map/joblog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace forklift::map {
namespace {

constexpr std::string_view kHeader =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// GNU parallel's \s+[-0-9.]+ for the numeric columns (JobRuntime is space-padded).
bool NumberLike(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

template <class T>
bool ParseInt(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool IsPerlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Whether GNU parallel's loose row pattern /\d+\s+[^\s]+\s+([-0-9.]+\s+){6}/ matches
// somewhere in `line`. Hand-coded over the line's blank-separated words, in one pass and
// constant stack: std::regex recursed once per character and overflowed the stack on
// long lines (issue 16). The pattern holds at word k when word k ends in a digit, word
// k + 1 is any word, words k + 2 .. k + 7 are all [-0-9.], and each of these eight is
// followed by a blank (a word at the line's end is followed by none).
bool LooseRowPatternMatches(std::string_view line) {
  struct Word {
    bool ends_in_digit;
    bool numeric;  // only [-0-9.]
    bool blank_after;
  };
  std::vector<Word> window;  // the last 8 words
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsPerlSpace(line[i])) ++i;
    if (i == line.size()) break;
    Word w{false, true, false};
    char last = 0;
    while (i < line.size() && !IsPerlSpace(line[i])) {
      char c = line[i++];
      w.numeric = w.numeric && ((c >= '0' && c <= '9') || c == '-' || c == '.');
      last = c;
    }
    w.ends_in_digit = last >= '0' && last <= '9';
    w.blank_after = i < line.size();
    if (window.size() == 8) window.erase(window.begin());
    window.push_back(w);
    if (window.size() < 8) continue;
    bool match = window[0].ends_in_digit;
    for (size_t k = 0; k < 8 && match; ++k) {
      match = window[k].blank_after && (k < 2 || window[k].numeric);
    }
    if (match) return true;
  }
  return false;
}

// A line as error messages quote it: its start, when it is long.
std::string Quoted(std::string_view line) {
  constexpr size_t kMax = 200;
  if (line.size() <= kMax) return std::string(line);
  return fmt::format("{}... ({} bytes)", line.substr(0, kMax), line.size());
}

// "1795423652.276": milliseconds as seconds with 3 decimals.
std::string Millis(int64_t ms) {
  if (ms < 0) ms = 0;
  return fmt::format("{}.{:03}", ms / 1000, ms % 1000);
}

}  // namespace

std::string_view JoblogHeader() { return kHeader; }

std::string FormatJoblogRow(const JoblogEntry& entry) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  // Starttime: sprintf("%.3f") rounds. JobRuntime: GNU parallel truncates to whole
  // milliseconds, then prints "%10.3f".
  int64_t start_ns = duration_cast<nanoseconds>(entry.start_time.time_since_epoch()).count();
  int64_t start_ms = (start_ns + 500'000) / 1'000'000;
  int64_t runtime_ms = duration_cast<milliseconds>(entry.runtime).count();
  std::string command = entry.command;
  for (char& c : command) {
    if (c == '\n') c = '\0';  // one job, one line
  }
  return fmt::format("{}\t{}\t{}\t{:>10}\t{}\t{}\t{}\t{}\t{}\n", entry.seq, entry.host,
                     Millis(start_ms), Millis(runtime_ms), entry.send, entry.receive,
                     entry.exit_value, entry.signal, command);
}

Result<std::unique_ptr<JoblogWriter>> JoblogWriter::Open(const std::string& path, JoblogMode mode) {
  auto fail = [&](int err) {
    return InvalidArgumentError("forklift map: cannot write to --joblog '" + path +
                                "': " + std::strerror(err));
  };
  bool header = mode == JoblogMode::kTruncate;
  std::unique_ptr<JoblogWriter> writer;
  if (path == "-") {
    writer.reset(new JoblogWriter(path, STDOUT_FILENO, false));
  } else {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    flags |= mode == JoblogMode::kTruncate ? O_TRUNC : O_APPEND;
    int fd = ::open(path.c_str(), flags, 0666);
    if (fd < 0) return fail(errno);
    if (mode == JoblogMode::kResume) {
      // GNU parallel appends only to a log that has a first line; else it starts anew.
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return fail(err);
      }
      header = st.st_size == 0;
    }
    writer.reset(new JoblogWriter(path, fd, true));
  }
  if (header) FORKLIFT_RETURN_IF_ERROR(writer->WriteAll(kHeader));
  return writer;
}

JoblogWriter::~JoblogWriter() {
  if (owns_fd_) ::close(fd_);
}

Status JoblogWriter::WriteAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return InternalError("forklift map: cannot write to --joblog '" + path_ +
                           "': " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

Status JoblogWriter::Append(const JoblogEntry& entry) {
  std::string row = FormatJoblogRow(entry);
  std::lock_guard<std::mutex> lock(mu_);
  return WriteAll(row);
}

Status JoblogHistory::AddLine(std::string_view line, bool first_line, std::string_view path) {
  // GNU parallel skips the first line unread; skipping it only when it is no row keeps
  // the first row of a header-less (--joblog +FILE) log.
  if (first_line && (line.empty() || line[0] < '0' || line[0] > '9')) return OkStatus();
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("forklift map: format of --joblog '" + std::string(path) +
                                "' is wrong" + std::string(why) + ": " + Quoted(line));
  };
  std::string_view fields[9];
  size_t count = 0;
  std::string_view rest = line;
  while (count < 8) {
    size_t tab = rest.find('\t');
    if (tab == std::string_view::npos) break;
    fields[count++] = rest.substr(0, tab);
    rest.remove_prefix(tab + 1);
  }
  uint64_t seq = 0;
  int exit_value = 0;
  int signal = 0;
  bool full = count == 8 && AllDigits(fields[0]) && ParseInt(fields[0], &seq) && !fields[1].empty();
  for (int i = 2; i < 8 && full; ++i) full = NumberLike(fields[i]);
  full = full && ParseInt(fields[6], &exit_value) && ParseInt(fields[7], &signal);
  if (!full) {
    // GNU parallel's --resume still counts a line that starts with a seq (a row cut
    // short when its writer died) and ignores one its loose pattern accepts.
    size_t digits = 0;
    while (digits < line.size() && line[digits] >= '0' && line[digits] <= '9') ++digits;
    if (digits == 0 || !ParseInt(line.substr(0, digits), &seq)) {
      if (LooseRowPatternMatches(line)) return OkStatus();
      return bad("");
    }
  }
  if (seq > kMaxSeq) return bad(" (seq too large)");
  uint8_t& flags = FlagsFor(seq);
  flags |= kRan;
  ++rows_;
  if (!full) return OkStatus();
  if (fields[6] == "0" && fields[7] == "0") {
    flags |= kSucceeded;
    failed_commands_.erase(seq);
    return OkStatus();
  }
  if (flags & kSucceeded) return OkStatus();
  std::string command(rest);
  for (char& c : command) {
    if (c == '\0') c = '\n';
  }
  failed_commands_[seq] = std::move(command);
  return OkStatus();
}

uint8_t JoblogHistory::Flags(uint64_t seq) const {
  if (seq < flags_.size()) return flags_[seq];
  auto it = sparse_flags_.find(seq);
  return it == sparse_flags_.end() ? 0 : it->second;
}

uint8_t& JoblogHistory::FlagsFor(uint64_t seq) {
  if (seq < flags_.size()) return flags_[seq];
  // Grow the dense part only as far as a log of this many rows could fill (4 bytes per
  // row read, plus some room): a corrupt or sparse seq goes to the hash map instead.
  constexpr uint64_t kDenseSlack = 4096;
  if (seq < 4 * (rows_ + 1) + kDenseSlack) {
    const size_t old_size = flags_.size();
    flags_.resize(seq + 1, 0);
    // Seqs seen while they were beyond the dense part move in, so each lives in one place
    // (one lookup per new dense slot: linear in all).
    for (size_t k = old_size; k < flags_.size() && !sparse_flags_.empty(); ++k) {
      if (auto it = sparse_flags_.find(k); it != sparse_flags_.end()) {
        flags_[k] = it->second;
        sparse_flags_.erase(it);
      }
    }
    return flags_[seq];
  }
  return sparse_flags_[seq];
}

Result<JoblogHistory> JoblogHistory::Parse(std::string_view contents, std::string_view path) {
  JoblogHistory history;
  bool first_line = true;
  while (!contents.empty()) {
    size_t nl = contents.find('\n');
    std::string_view line = contents.substr(0, nl);
    contents.remove_prefix(nl == std::string_view::npos ? contents.size() : nl + 1);
    FORKLIFT_RETURN_IF_ERROR(history.AddLine(line, first_line, path));
    first_line = false;
  }
  return history;
}

Result<JoblogHistory> JoblogHistory::Read(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    if (errno == ENOENT) return JoblogHistory();
    return InvalidArgumentError("forklift map: cannot read --joblog '" + path +
                                "': " + std::strerror(errno));
  }
  JoblogHistory history;
  char* buf = nullptr;
  size_t cap = 0;
  bool first_line = true;
  Status status = OkStatus();
  while (true) {
    errno = 0;
    ssize_t n = ::getline(&buf, &cap, f);
    if (n < 0) {
      if (errno != 0) {
        status = InvalidArgumentError("forklift map: cannot read --joblog '" + path +
                                      "': " + std::strerror(errno));
      }
      break;
    }
    std::string_view line(buf, static_cast<size_t>(n));
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    status = history.AddLine(line, first_line, path);
    if (!status) break;
    first_line = false;
  }
  std::free(buf);
  std::fclose(f);
  if (!status) return tl::unexpected(status.error());
  return history;
}

std::vector<std::pair<uint64_t, std::string>> JoblogHistory::FailedCommands() const {
  std::vector<std::pair<uint64_t, std::string>> out;
  out.reserve(failed_commands_.size());
  for (const auto& [seq, command] : failed_commands_) {
    if (!Succeeded(seq)) out.emplace_back(seq, command);
  }
  return out;
}

}  // namespace forklift::map
