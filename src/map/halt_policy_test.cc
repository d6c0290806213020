#include "map/halt_policy.h"

#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::map {
namespace {

using ::testing::HasSubstr;

HaltPolicy Parse(std::string_view text) {
  auto p = ParseHaltPolicy(text);
  EXPECT_TRUE(p) << text << ": " << p.error().ToString();
  return p ? *p : HaltPolicy{};
}

TEST(ParseHaltPolicyTest, LongForms) {
  EXPECT_EQ(Parse("never"), HaltPolicy{});
  EXPECT_EQ(Parse("now,fail=1"),
            (HaltPolicy{.when = HaltWhen::kNow, .on = HaltOn::kFail, .value = 1}));
  EXPECT_EQ(
      Parse("soon,fail=3%"),
      (HaltPolicy{.when = HaltWhen::kSoon, .on = HaltOn::kFail, .percent = true, .value = 3}));
  EXPECT_EQ(Parse("now,success=2"),
            (HaltPolicy{.when = HaltWhen::kNow, .on = HaltOn::kSuccess, .value = 2}));
  EXPECT_EQ(
      Parse("soon,done=50%"),
      (HaltPolicy{.when = HaltWhen::kSoon, .on = HaltOn::kDone, .percent = true, .value = 50}));
  // GNU parallel splits on ',' and '=' alike.
  EXPECT_EQ(Parse("now=fail=1"), Parse("now,fail=1"));
  EXPECT_EQ(Parse("never,whatever"), HaltPolicy{});
}

TEST(ParseHaltPolicyTest, LegacyForms) {
  EXPECT_EQ(Parse("0"), HaltPolicy{});
  EXPECT_EQ(Parse("1"), Parse("soon,fail=1"));
  EXPECT_EQ(Parse("2"), Parse("now,fail=1"));
  EXPECT_EQ(Parse("-1"), Parse("soon,success=1"));
  EXPECT_EQ(Parse("-2"), Parse("now,success=1"));
  EXPECT_EQ(Parse("25%"), Parse("soon,fail=25%"));
}

TEST(ParseHaltPolicyTest, ErrorsNameTheText) {
  // All but the last are rejected by GNU parallel too (exit 255).
  for (const char* bad : {"sometimes", "", "3", "now", "now,", "now,fail", "now,fail=x",
                          "now,fail=-1", "now,oops=1", "soon,fail=1.5", "now,fail=1,x"}) {
    auto p = ParseHaltPolicy(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(p.error().message, HasSubstr(std::string("--halt '") + bad + "'"));
  }
}

// Runs jobs with these exit statuses (-j1: one at a time, stopping when told to) and
// returns the exit status forklift map would use. Expectations are GNU parallel's:
//   parallel -j1 --halt SPEC 'exit {}' ::: STATUSES; echo $?
int RunJobs(std::string_view spec, const std::vector<std::pair<int, int>>& jobs) {
  HaltTracker tracker(Parse(spec));
  uint64_t started = 0;
  for (auto [exit_value, signal] : jobs) {
    ++started;
    if (tracker.OnJobDone(exit_value, signal, jobs.size()) != HaltDecision::kContinue) break;
  }
  return tracker.ExitStatus(started);
}

std::vector<std::pair<int, int>> Exits(std::vector<int> codes) {
  std::vector<std::pair<int, int>> out;
  for (int c : codes) out.emplace_back(c, 0);
  return out;
}

TEST(HaltTrackerTest, ExitStatusMatchesGnuParallel) {
  EXPECT_EQ(RunJobs("never", Exits({0, 1, 2, 0, 3})), 3);
  EXPECT_EQ(RunJobs("now,fail=1", Exits({0, 3, 0})), 3);
  EXPECT_EQ(RunJobs("now,fail=1", {{0, 9}}), 137);
  EXPECT_EQ(RunJobs("soon,fail=2", Exits({1, 2, 0, 4})), 2);
  EXPECT_EQ(RunJobs("50%", Exits({0, 1, 0, 1, 0})), 40);  // never reached: 2 of 5 started
  EXPECT_EQ(RunJobs("now,success=1", Exits({1, 0})), 0);
  EXPECT_EQ(RunJobs("soon,fail=3", Exits({1, 0})), 1);
  EXPECT_EQ(RunJobs("now,done=1", Exits({0, 1})), 0);
  EXPECT_EQ(RunJobs("soon,fail=20%", Exits({0, 1, 0, 2, 0, 0, 0, 0, 0, 0})), 20);
  EXPECT_EQ(RunJobs("now,done=2", Exits({0, 1, 0})), 1);
  EXPECT_EQ(RunJobs("now,fail=10%", Exits({0, 5, 0, 0, 0, 0, 0, 0, 0, 0})), 5);  // 10% of 10 = 1
  EXPECT_EQ(RunJobs("now,success=50%", Exits({1, 0, 0, 1})), 0);
  EXPECT_EQ(RunJobs("soon,fail=5", Exits({0})), 0);
  EXPECT_EQ(RunJobs("now=fail=1", Exits({0, 4})), 4);
}

TEST(HaltTrackerTest, WithoutHaltFailuresCapAt101) {
  std::vector<int> codes(150, 1);
  EXPECT_EQ(RunJobs("never", Exits(codes)), 101);
  HaltTracker t(HaltPolicy{});
  EXPECT_EQ(t.ExitStatus(0), 0);
}

TEST(HaltTrackerTest, DecisionsAndCounts) {
  HaltTracker soon(Parse("soon,fail=2"));
  EXPECT_EQ(soon.OnJobDone(1, 0, 0), HaltDecision::kContinue);
  EXPECT_EQ(soon.OnJobDone(0, 0, 0), HaltDecision::kContinue);
  EXPECT_FALSE(soon.halted());
  EXPECT_EQ(soon.OnJobDone(0, 15, 0), HaltDecision::kSoon);  // a signal is a failure
  EXPECT_TRUE(soon.halted());
  // Jobs still running when it halted finish; the exit status stays the first one.
  EXPECT_EQ(soon.OnJobDone(7, 0, 0), HaltDecision::kSoon);
  EXPECT_EQ(soon.failed(), 3u);
  EXPECT_EQ(soon.completed(), 4u);
  EXPECT_EQ(soon.ExitStatus(4), 2);

  HaltTracker now(Parse("now,success=1"));
  EXPECT_EQ(now.OnJobDone(1, 0, 0), HaltDecision::kContinue);  // a failure is not watched
  EXPECT_EQ(now.OnJobDone(0, 0, 0), HaltDecision::kNow);
}

TEST(HaltTrackerTest, PercentWaitsForTheTotal) {
  HaltTracker t(Parse("now,fail=50%"));
  EXPECT_EQ(t.OnJobDone(1, 0, 0), HaltDecision::kContinue);  // total unknown
  EXPECT_EQ(t.OnJobDone(1, 0, 4), HaltDecision::kNow);       // 2 >= 50% of 4
  EXPECT_EQ(t.ExitStatus(2), 50);
}

TEST(HaltTrackerTest, TimeoutStatusWrapsLikeExit) {
  // GNU parallel records -1 for a timed-out job; exit(-1) is 255.
  EXPECT_EQ(RunJobs("now,fail=1", {{-1, 15}}), 255);
}

}  // namespace
}  // namespace forklift::map
