#include "flow/report_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::flow {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

TEST(ReportJsonTest, ARoundTripKeepsEveryField) {
  ReportData r;
  r.flow_name = "nightly";
  r.run_id = "nightly-1";
  r.status = "failed";
  r.started_unix_s = 1764633600;
  r.wall_s = 12.5;
  TaskReport t;
  t.name = "scrape";
  t.state = "failed";
  t.critical = false;
  t.slow = true;
  t.on_critical_path = true;
  t.log_tail = "boom";
  t.group = "scrapers";
  t.sql_tags = {"a.sql:1: VACUUM"};
  t.items_succeeded = 3;
  t.items_failed = 1;
  t.slowest_items = {{"sh a.sh 2", 9.0}};
  t.attempts = {{0.5, 1.25, 1, 0, "failed"}, {2.0, 0.5, 0, 9, "killed"}};
  r.tasks = {t};
  r.hooks = {{"on_finish", "", "exit 0", true, 0.25}};

  json j = ReportToJson(r, {"hash-1"});
  EXPECT_EQ(j["tasks"][0]["cmd_hash"], "hash-1");
  auto back = ReportFromJson(json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->flow_name, "nightly");
  EXPECT_EQ(back->started_unix_s, 1764633600);
  EXPECT_DOUBLE_EQ(back->wall_s, 12.5);
  ASSERT_EQ(back->tasks.size(), 1U);
  const TaskReport& b = back->tasks[0];
  EXPECT_EQ(b.name, "scrape");
  EXPECT_FALSE(b.critical);
  EXPECT_TRUE(b.slow);
  EXPECT_TRUE(b.on_critical_path);
  EXPECT_EQ(b.group, "scrapers");
  EXPECT_EQ(b.sql_tags, t.sql_tags);
  EXPECT_EQ(b.items_succeeded, 3U);
  EXPECT_EQ(b.items_failed, 1U);
  EXPECT_EQ(b.slowest_items, t.slowest_items);
  ASSERT_EQ(b.attempts.size(), 2U);
  EXPECT_EQ(b.attempts[1].signal, 9);
  EXPECT_EQ(b.attempts[1].state, "killed");
  ASSERT_EQ(back->hooks.size(), 1U);
  EXPECT_EQ(back->hooks[0].hook, "on_finish");
  EXPECT_TRUE(back->hooks[0].ok);
}

TEST(ReportJsonTest, MissingFieldsTakeDefaultsAndWrongTypesAreDataLoss) {
  auto old = ReportFromJson(json::parse(R"({"run_id": "r", "tasks": [{"name": "a"}]})"));
  ASSERT_TRUE(old) << old.error().ToString();
  EXPECT_EQ(old->tasks[0].name, "a");
  EXPECT_TRUE(old->tasks[0].critical);
  EXPECT_FALSE(old->tasks[0].items_succeeded);

  for (const char* bad :
       {R"(5)", R"({"tasks": 5})", R"({"run_id": 7})", R"({"tasks": [{"attempts": [3]}]})"}) {
    auto r = ReportFromJson(json::parse(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kDataLoss) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("not a report")) << bad;
  }
}

}  // namespace
}  // namespace forklift::flow
