// The --joblog reader (map --resume, --resume-failed, --retry-failed). Properties:
//  - rows written by FormatJoblogRow read back equal: every seq ran, a seq succeeded
//    exactly when one of its rows had exit 0 and signal 0, and --retry-failed's commands
//    are the last failed row's command per seq without a success (newlines restored);
//  - over arbitrary bytes, JoblogHistory::Read (from a file, line by line) and ::Parse
//    (in memory) agree: both succeed with the same history or fail with the same message;
//    no more rows than lines are counted.
// Input: byte 0's low bit picks the mode; mode 0 reads entries from the rest
// (seq, exit, signal bytes, then the command up to '\x01').
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "map/joblog.h"

namespace fm = forklift::map;

namespace {

bool SameHistory(const fm::JoblogHistory& a, const fm::JoblogHistory& b, uint64_t max_seq) {
  if (a.rows() != b.rows() || a.FailedCommands() != b.FailedCommands()) return false;
  for (uint64_t s = 0; s <= max_seq; ++s) {
    if (a.Ran(s) != b.Ran(s) || a.Succeeded(s) != b.Succeeded(s)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  const uint8_t mode = in.Byte();
  if (mode % 2 == 0) {
    std::string log(fm::JoblogHeader());
    std::set<uint64_t> ran, succeeded;
    std::map<uint64_t, std::string> failed;
    int rows = 0;
    while (!in.empty()) {
      fm::JoblogEntry e;
      e.seq = 1 + in.Byte() % 16;
      e.exit_value = in.Byte() % 4;
      e.signal = in.Byte() % 3 == 0 ? 9 : 0;
      if (e.signal) e.exit_value = 0;
      e.start_time = std::chrono::system_clock::time_point(
          std::chrono::milliseconds(int64_t{1795423652276} + in.Byte() * 997));
      e.runtime = std::chrono::milliseconds(in.Byte() * 12345);
      e.receive = in.Byte();
      std::string cmd(in.Until('\x01'));
      for (char& c : cmd) {
        if (c == '\0') c = ' ';  // no command holds a NUL
      }
      e.command = cmd;
      std::string row = fm::FormatJoblogRow(e);
      FUZZ_CHECK(!row.empty() && row.back() == '\n');
      FUZZ_CHECK(row.find('\n') == row.size() - 1);  // one job, one line
      log += row;
      ++rows;
      ran.insert(e.seq);
      if (e.exit_value == 0 && e.signal == 0) {
        succeeded.insert(e.seq);
        failed.erase(e.seq);
      } else if (!succeeded.count(e.seq)) {
        failed[e.seq] = cmd;
      }
    }
    auto h = fm::JoblogHistory::Parse(log, "fuzz");
    FUZZ_CHECK(h.has_value());
    FUZZ_CHECK(h->rows() == static_cast<uint64_t>(rows));
    for (uint64_t s = 0; s <= 17; ++s) {
      FUZZ_CHECK(h->Ran(s) == (ran.count(s) > 0));
      FUZZ_CHECK(h->Succeeded(s) == (succeeded.count(s) > 0));
    }
    std::vector<std::pair<uint64_t, std::string>> want(failed.begin(), failed.end());
    FUZZ_CHECK(h->FailedCommands() == want);
    forklift::fuzz::MemFile file(log);
    auto r = fm::JoblogHistory::Read(file.path());
    FUZZ_CHECK(r.has_value() && SameHistory(*h, *r, 17));
    return 0;
  }

  std::string_view contents = in.Rest();
  auto parsed = fm::JoblogHistory::Parse(contents, "fuzz");
  forklift::fuzz::MemFile file(contents);
  auto read = fm::JoblogHistory::Read(file.path());
  FUZZ_CHECK(parsed.has_value() == read.has_value());
  if (!parsed) {
    FUZZ_CHECK(parsed.error().message.find("format of --joblog 'fuzz' is wrong") !=
                   std::string::npos ||
               parsed.error().message.find("fuzz") != std::string::npos);
    return 0;
  }
  size_t lines = 0;
  for (char c : contents) lines += c == '\n';
  FUZZ_CHECK(parsed->rows() <= lines + 1);
  FUZZ_CHECK(SameHistory(*parsed, *read, 300));
  return 0;
}
