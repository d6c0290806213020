#include "load/load_progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace forklift::load {
namespace {

using namespace std::chrono_literals;

// issue 10's wording: a finished small load said "0.0 MB" and "ETA 0ns".
TEST(LoadProgressTest, AFinishedSmallLoadSaysItsSizeAndNoEta) {
  ReadCounters read;
  WriteCounters write;
  read.source_bytes = 40000;
  write.rows_loaded = 1200;
  write.rows_rejected = 1;
  write.rows_skipped = 300;
  core::ProgressSnapshot s = LoadSnapshot(40000, read, write);
  s.elapsed = 2s;
  EXPECT_EQ(core::RenderProgress(s, false),
            "load: 100% of 40.0 kB, 1.2k rows loaded, 1 rejected, 300 already loaded, "
            "600 rows/s, 20.0 kB/s");
  s.total_bytes = 0;  // stdin: no size known
  EXPECT_EQ(core::RenderProgress(s, true),
            "load 1.2k rows loaded, 1 rejected, 300 already loaded, 600 rows/s, 20.0 kB/s");
}

TEST(LoadProgressTest, LinesOffATerminalEndWithTheFinalState) {
  ReadCounters read;
  WriteCounters write;
  FILE* out = std::tmpfile();
  {
    LoadProgress p(ProgressDisplay::kAuto, 1h, out, 100, &read, &write);
    p.Start();
    read.source_bytes = 100;
    write.rows_loaded = 7;
    p.Stop();
  }
  std::rewind(out);
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, out);
  std::fclose(out);
  std::string text(buf, n);
  EXPECT_EQ(text.rfind("load: 100% of 100 B, 7 rows loaded, 0 rejected", 0), 0u) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << "a file is not a terminal";
}

}  // namespace
}  // namespace forklift::load
