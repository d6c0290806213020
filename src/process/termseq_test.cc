#include "process/termseq.h"

#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::process {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(TermSeqTest, DefaultIsGnuParallels) {
  TermSeq seq = TermSeq::Default();
  ASSERT_EQ(seq.steps.size(), 4u);
  EXPECT_EQ(seq.steps[0], (TermSeq::Step{SIGTERM, milliseconds(200)}));
  EXPECT_EQ(seq.steps[1], (TermSeq::Step{SIGTERM, milliseconds(100)}));
  EXPECT_EQ(seq.steps[2], (TermSeq::Step{SIGTERM, milliseconds(50)}));
  EXPECT_EQ(seq.steps[3], (TermSeq::Step{SIGKILL, milliseconds(25)}));
  EXPECT_EQ(seq.ToString(), "TERM,200,TERM,100,TERM,50,KILL,25");
  EXPECT_EQ(TermSeq::Parse(seq.ToString()).value(), seq);
}

TEST(TermSeqTest, ParsesNamesNumbersAndPrefixes) {
  auto seq = TermSeq::Parse("TERM,200,KILL,25");
  ASSERT_TRUE(seq) << seq.error().ToString();
  ASSERT_EQ(seq->steps.size(), 2u);
  EXPECT_EQ(seq->steps[0], (TermSeq::Step{SIGTERM, milliseconds(200)}));
  EXPECT_EQ(seq->steps[1], (TermSeq::Step{SIGKILL, milliseconds(25)}));

  auto mixed = TermSeq::Parse("sigint,0,2,10,SIGHUP,7,usr1,1");
  ASSERT_TRUE(mixed) << mixed.error().ToString();
  ASSERT_EQ(mixed->steps.size(), 4u);
  EXPECT_EQ(mixed->steps[0], (TermSeq::Step{SIGINT, milliseconds(0)}));
  EXPECT_EQ(mixed->steps[1], (TermSeq::Step{SIGINT, milliseconds(10)}));
  EXPECT_EQ(mixed->steps[2], (TermSeq::Step{SIGHUP, milliseconds(7)}));
  EXPECT_EQ(mixed->steps[3], (TermSeq::Step{SIGUSR1, milliseconds(1)}));
  EXPECT_EQ(mixed->ToString(), "INT,0,INT,10,HUP,7,USR1,1");
}

TEST(TermSeqTest, LastWaitMayBeLeftOut) {
  auto seq = TermSeq::Parse("TERM,100,KILL");
  ASSERT_TRUE(seq) << seq.error().ToString();
  ASSERT_EQ(seq->steps.size(), 2u);
  EXPECT_EQ(seq->steps[1], (TermSeq::Step{SIGKILL, milliseconds(0)}));
}

TEST(TermSeqTest, RejectsNamingTheBadToken) {
  struct Case {
    const char* text;
    const char* names;
  };
  for (const Case& c :
       {Case{"NOPE,1", "'NOPE'"}, Case{"TERM,x", "'x'"}, Case{"TERM,100,KILL,-5", "'-5'"},
        Case{"TERM,,KILL", "''"}, Case{"0,10", "'0'"}, Case{"65,10", "'65'"},
        Case{"TERM,10ms", "'10ms'"}, Case{"SIG,1", "'SIG'"}, Case{"TERM,1,", "''"}}) {
    auto r = TermSeq::Parse(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << c.text;
    EXPECT_THAT(r.error().message, HasSubstr(c.names)) << c.text;
  }
  auto empty = TermSeq::Parse("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
}

TEST(TermSeqTest, SignalNamesRoundTrip) {
  EXPECT_EQ(ParseSignal("TERM").value(), SIGTERM);
  EXPECT_EQ(ParseSignal("SIGKILL").value(), SIGKILL);
  EXPECT_EQ(ParseSignal("segv").value(), SIGSEGV);
  EXPECT_EQ(ParseSignal("9").value(), SIGKILL);
  EXPECT_FALSE(ParseSignal("TERM9"));
  EXPECT_EQ(SignalName(SIGTERM), "TERM");
  EXPECT_EQ(SignalName(SIGABRT), "ABRT");
  EXPECT_EQ(SignalName(SIGRTMIN + 1), std::to_string(SIGRTMIN + 1));
}

}  // namespace
}  // namespace forklift::process
