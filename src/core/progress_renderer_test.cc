#include "core/progress_renderer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace forklift::core {
namespace {

using namespace std::chrono_literals;

std::string ReadAll(FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

ProgressSnapshot Jobs(uint64_t done, uint64_t total, Duration elapsed) {
  return {.label = "map",
          .unit = "jobs",
          .rate_unit = "jobs",
          .done = done,
          .total = total,
          .failed = 1,
          .elapsed = elapsed};
}

TEST(ProgressRendererTest, LineAndBarSayPercentRateAndEta) {
  EXPECT_EQ(RenderProgress(Jobs(250, 1000, 10s), false),
            "map: 25% 250/1.0k jobs, 1 failed, 25.0 jobs/s, ETA 30s");
  EXPECT_EQ(RenderProgress(Jobs(250, 1000, 10s), true),
            "map [======>                 ]  25% 250/1.0k jobs, 1 failed, 25.0 jobs/s, ETA 30s");
  EXPECT_EQ(RenderProgress(Jobs(3, 0, 1s), false), "map: 3 jobs, 1 failed, 3.0 jobs/s")
      << "no percent or ETA while the total is unknown";
  EXPECT_EQ(RenderProgress(Jobs(0, 10, 0s), false), "map: 0% 0/10 jobs, 1 failed, ETA ?");
}

// issue 10's wording bugs in load's line: "ETA 0ns" once done, "0.0 MB" for small files.
TEST(ProgressRendererTest, NoZeroEtaOnceDoneAndSmallSizesInTheirUnit) {
  ProgressSnapshot load{.label = "load",
                        .unit = "rows loaded",
                        .rate_unit = "rows",
                        .done = 1200,
                        .failed = 3,
                        .failed_word = "rejected",
                        .bytes = 40000,
                        .total_bytes = 40000,
                        .elapsed = 2s};
  std::string line = RenderProgress(load, false);
  EXPECT_EQ(line, "load: 100% of 40.0 kB, 1.2k rows loaded, 3 rejected, 600 rows/s, 20.0 kB/s");
  EXPECT_EQ(line.find("ETA"), std::string::npos);
  EXPECT_EQ(line.find("0.0 MB"), std::string::npos);
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(999), "999 B");
  EXPECT_EQ(FormatBytes(4.5e6), "4.5 MB");
  EXPECT_EQ(FormatBytes(1.2e9), "1.20 GB");
  EXPECT_EQ(FormatEta(0s), "0s");
  EXPECT_EQ(FormatEta(65s), "1m05s");
  EXPECT_EQ(FormatEta(7380s), "2h03m");
}

TEST(ProgressRendererTest, PrinterPacesLinesAndKeepsControlCodesForTheBar) {
  FILE* out = std::tmpfile();
  ProgressPrinter lines(ProgressDisplay::kLines, 5s, out);
  TimePoint t{};
  for (int i = 0; i <= 12; ++i) lines.Update(Jobs(i, 12, i * 1s), t + i * 1s);
  lines.Finish(Jobs(12, 12, 12s));
  std::string text = ReadAll(out);
  std::fclose(out);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;  // 5s, 10s, the end
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);

  out = std::tmpfile();
  ProgressPrinter bar(ProgressDisplay::kBar, 5s, out);
  bar.Update(Jobs(0, 2, 0s), t);
  bar.Update(Jobs(1, 2, 1s), t + 1s);
  bar.Finish(Jobs(2, 2, 2s));
  text = ReadAll(out);
  std::fclose(out);
  EXPECT_NE(text.find("\r\x1b[2Kmap [============>"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressTickerTest, StopDrawsTheFinalStateOnceAndNoneDrawsNothing) {
  FILE* out = std::tmpfile();
  std::atomic<uint64_t> done{0};
  {
    ProgressTicker ticker({.display = ProgressDisplay::kLines, .interval = 1h, .out = out},
                          [&] { return Jobs(done.load(), 4, {}); });
    ticker.Start();
    done = 4;
    ticker.Stop();
    ticker.Stop();
  }
  std::string text = ReadAll(out);
  std::fclose(out);
  EXPECT_EQ(text.substr(0, 21), "map: 100% 4/4 jobs, 1") << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;

  out = std::tmpfile();
  {
    ProgressTicker none({.display = ProgressDisplay::kNone, .out = out},
                        [&] { return Jobs(1, 4, {}); });
    none.Start();
  }
  EXPECT_EQ(ReadAll(out), "");
  std::fclose(out);
}

}  // namespace
}  // namespace forklift::core
