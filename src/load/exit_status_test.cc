#include "load/exit_status.h"

#include <gtest/gtest.h>

namespace forklift::load {
namespace {

// The messages as sinks and libpq word them (tests/load_test.py's ExitStatusTest runs the
// real ones end to end).
TEST(ExitStatusTest, ErrorsBeforeLoadingFollowTheTable) {
  struct Case {
    Error error;
    int want;
  } cases[] = {
      {{ErrorCode::kInvalidArgument, "--chunk-bytes '4XB': expected a size"}, kExitUsage},
      {{ErrorCode::kNotFound, "cannot open 'a.csv': No such file or directory"}, kExitUsage},
      {{ErrorCode::kUnavailable,
        "--to: cannot connect to postgresql://u@h/d: connection to server at \"h\", port 1 "
        "failed: Connection refused"},
       kExitUnreachable},
      {{ErrorCode::kInvalidArgument,
        "--to: cannot connect to postgresql://u:***@h/d: connection to server at \"h\", port "
        "1 failed: FATAL:  password authentication failed for user \"u\""},
       kExitRefused},
      {{ErrorCode::kInvalidArgument,
        "--to: cannot connect to postgresql://u@h/x: connection to server at \"h\", port 1 "
        "failed: FATAL:  database \"x\" does not exist"},
       kExitMissing},
      {{ErrorCode::kInvalidArgument,
        "--to: cannot connect to postgresql://u@h/x: could not translate host name \"h\" to "
        "address: Name or service not known"},
       kExitUnreachable},
      {{ErrorCode::kFailedPrecondition, "--table s.t: no such table in postgresql://u@h/d"},
       kExitMissing},
      {{ErrorCode::kFailedPrecondition,
        "--to postgresql://u@h/d: permission denied: role u lacks CREATE on schema s"},
       kExitRefused},
      {{ErrorCode::kFailedPrecondition,
        "--to postgresql://u@h/d: SQLSTATE 42501: permission denied for schema s"},
       kExitRefused},
      {{ErrorCode::kAborted, "another load with load id x is running against postgresql://h"},
       kExitBusy},
      {{ErrorCode::kInternal, "something else"}, kExitFailed},
  };
  for (const Case& c : cases) EXPECT_EQ(ExitStatusOf(c.error), c.want) << c.error.message;
}

TEST(ExitStatusTest, ALoadThatRanIsLoadedRejectedOrFailed) {
  LoadSummary s;
  s.status = "succeeded";
  EXPECT_EQ(ExitStatusOf(s), kExitLoaded);
  s.rows_rejected = 1;
  EXPECT_EQ(ExitStatusOf(s), kExitRejected);
  s.status = "failed";
  EXPECT_EQ(ExitStatusOf(s), kExitFailed);
  s.status = "cancelled";
  EXPECT_EQ(ExitStatusOf(s), kExitFailed);
}

}  // namespace
}  // namespace forklift::load
