#include "core/progress_reporter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

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

TEST(ProgressReporterTest, CallbackSeesRateAndEta) {
  FakeClock clock;
  std::vector<Progress> seen;
  ProgressReporter r({.display = ProgressDisplay::kNone,
                      .total = 10,
                      .callback = [&](const Progress& p) { seen.push_back(p); }},
                     clock);
  clock.Advance(1s);
  r.OnOutcome(false);
  clock.Advance(1s);
  r.OnOutcome(true);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].completed, 2u);
  EXPECT_EQ(seen[1].failed, 1u);
  EXPECT_DOUBLE_EQ(seen[1].rate, 1.0);
  ASSERT_TRUE(seen[1].eta);
  EXPECT_EQ(*seen[1].eta, 8s);
}

TEST(ProgressReporterTest, UnknownTotalHasNoEta) {
  FakeClock clock;
  ProgressReporter r({.display = ProgressDisplay::kNone}, clock);
  clock.Advance(1s);
  r.OnOutcome(false);
  EXPECT_FALSE(r.progress().eta);
  EXPECT_EQ(r.Render(false), "forklift: 1 items, 0 failed, 1.0 items/s");
}

TEST(ProgressReporterTest, PlainLinesComeOncePerInterval) {
  FakeClock clock;
  FILE* out = std::tmpfile();
  ProgressReporter r({.display = ProgressDisplay::kLines, .interval = 5s, .total = 100, .out = out},
                     clock);
  for (int i = 0; i < 20; ++i) {
    clock.Advance(1s);
    r.OnOutcome(false);
  }
  r.Finish();
  std::string text = ReadAll(out);
  std::fclose(out);
  size_t lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_EQ(lines, 4u) << text;  // at 5s, 10s, 15s, 20s
  EXPECT_NE(text.find("forklift: 20% 20/100 items, 0 failed, 1.0 items/s, ETA 1m20s"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << "no control characters off a TTY";
}

TEST(ProgressReporterTest, BarRedrawsInPlaceAndEndsWithNewline) {
  FakeClock clock;
  FILE* out = std::tmpfile();
  ProgressReporter r({.display = ProgressDisplay::kBar, .total = 4, .out = out}, clock);
  for (int i = 0; i < 4; ++i) {
    clock.Advance(200ms);
    r.OnOutcome(false);
  }
  r.Finish();
  std::string text = ReadAll(out);
  std::fclose(out);
  EXPECT_NE(text.find("\r\x1b[2Kforklift [============>           ]  50% 2/4 items"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("[========================] 100% 4/4 items"), std::string::npos) << text;
}

}  // namespace
}  // namespace forklift::core
