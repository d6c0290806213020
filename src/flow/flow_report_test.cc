#include "flow/flow_report.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

namespace forklift::flow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

size_t Count(const std::string& haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// discovery [0,2] -> main (failed once, retried, succeeded) [2,14] -> report [14,15];
// scrape (non-critical, failed for good, slow, hostile log and name); late upstream_failed.
ReportData Sample() {
  ReportData d;
  d.flow_name = "nightly <prod>";
  d.run_id = "r-20260301-0200";
  d.status = "failed";
  d.started_unix_s = 1772330400;  // 2026-03-01 02:00:00 UTC
  d.wall_s = 15;
  d.tasks.push_back({.name = "discovery",
                     .state = "succeeded",
                     .on_critical_path = true,
                     .attempts = {{0, 2, 0, 0, "succeeded"}}});
  d.tasks.push_back(
      {.name = "scrape \"cboe\" & co",
       .state = "failed",
       .critical = false,
       .slow = true,
       .attempts = {{2, 3, 1, 0, "retried"}, {6, 4, 0, 9, "failed"}},
       .log_tail = "fetching\n<script>alert(1)</script> & more\n\x1b[31mred\x1b[0m\n"});
  d.tasks.push_back({.name = "main",
                     .state = "succeeded",
                     .on_critical_path = true,
                     .attempts = {{2, 5, 1, 0, "retried"}, {8, 6, 0, 0, "succeeded"}}});
  d.tasks.push_back({.name = "report",
                     .state = "succeeded",
                     .on_critical_path = true,
                     .attempts = {{14, 1, 0, 0, "succeeded"}}});
  d.tasks.push_back({.name = "late", .state = "upstream_failed"});
  return d;
}

TEST(RenderReportHtmlTest, SelfContainedWithTitleAndTimeline) {
  std::string html = RenderReportHtml(Sample());
  EXPECT_THAT(html, ::testing::StartsWith("<!DOCTYPE html>"));
  EXPECT_THAT(html,
              HasSubstr("<title>forklift flow nightly &lt;prod&gt; run r-20260301-0200</title>"));
  EXPECT_THAT(html, HasSubstr("2026-03-01 02:00:00 UTC"));
  EXPECT_THAT(html, HasSubstr("wall time 15.00s"));
  EXPECT_THAT(html, HasSubstr("<span class=\"status st-failed\">failed</span>"));
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("</svg>"));
  // Nothing is fetched: no remote src/href, no CSS url(), no @import, no protocol at all.
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, Not(HasSubstr("src=")));
  EXPECT_THAT(html, Not(HasSubstr("href=")));
  EXPECT_THAT(html, Not(HasSubstr("url(")));
  EXPECT_THAT(html, Not(HasSubstr("@import")));
}

TEST(RenderReportHtmlTest, OneBarPerAttemptColoredByState) {
  std::string html = RenderReportHtml(Sample());
  EXPECT_EQ(Count(html, "<rect class=\"bar "), 6u);  // 1 + 2 + 2 + 1 + 0
  EXPECT_EQ(Count(html, "<rect class=\"bar a-retried"), 2u);
  EXPECT_EQ(Count(html, "<rect class=\"bar a-failed"), 1u);
  EXPECT_EQ(Count(html, "<rect class=\"bar a-succeeded"), 3u);
  // Critical-path tasks' bars carry the outline class: discovery, both of main's, report.
  EXPECT_EQ(Count(html, " cp\" x="), 4u);
  // A task that never ran shows its state in its row instead of a bar.
  EXPECT_THAT(html, HasSubstr("class=\"t-upstream_failed\""));
  EXPECT_EQ(Count(html, "class=\"slow\""), 1u);
  // The axis has ticks: 0 to 15s in 2s steps.
  EXPECT_THAT(html, HasSubstr(">0</text>"));
  EXPECT_THAT(html, HasSubstr(">14s</text>"));
  // Retries are distinguishable in the tooltip.
  EXPECT_THAT(html, HasSubstr("main attempt 2: succeeded, exit 0, 6.00s at +8.00s"));
  EXPECT_THAT(html, HasSubstr("attempt 2: failed, killed by signal 9 (KILL)"));
}

TEST(RenderReportHtmlTest, EscapesEverythingFromTasksAndLogs) {
  std::string html = RenderReportHtml(Sample());
  EXPECT_THAT(html, Not(HasSubstr("<script>alert(1)")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
  EXPECT_THAT(html, Not(HasSubstr("scrape \"cboe\"")));
  EXPECT_THAT(html, HasSubstr("scrape &quot;cboe&quot; &amp; co"));
  EXPECT_THAT(html, Not(HasSubstr("<prod>")));
  // ANSI colors are dropped from logs, not shown as escape junk.
  EXPECT_THAT(html, HasSubstr("\nred\n"));
  EXPECT_THAT(html, Not(HasSubstr("\x1b")));
  // Exactly one script element: ours.
  EXPECT_EQ(Count(html, "<script"), 1u);
}

TEST(RenderReportHtmlTest, HostileStatesCannotLeaveTheirAttribute) {
  ReportData d = Sample();
  d.tasks[0].state = "x\" onmouseover=\"alert(1)";
  d.tasks[0].attempts[0].state = "<b>";
  d.status = "x\"><img>";
  std::string html = RenderReportHtml(d);
  EXPECT_THAT(html, Not(HasSubstr("onmouseover=\"")));
  EXPECT_THAT(html, Not(HasSubstr("<img>")));
  EXPECT_THAT(html, Not(HasSubstr("<b>")));
  EXPECT_THAT(html, HasSubstr("class=\"bar a-other cp\""));
}

TEST(RenderReportHtmlTest, FailuresShowTheTailOfTheirLogs) {
  ReportData d = Sample();
  std::string log;
  for (int i = 1; i <= 100; ++i) log += fmt::format("line {:03}\n", i);
  d.tasks[1].log_tail = log;
  std::string html = RenderReportHtml(d);
  EXPECT_THAT(html, HasSubstr("<h2>Failures</h2>"));
  EXPECT_THAT(
      html,
      HasSubstr(
          "killed by signal 9 (KILL) after 2 attempts (non-critical: its dependents still ran)"));
  EXPECT_THAT(html, Not(HasSubstr("line 060")));
  EXPECT_THAT(html, HasSubstr("<pre>line 061\n"));
  EXPECT_THAT(html, HasSubstr("line 100\n</pre>"));
  // Only failed tasks get a log section.
  EXPECT_EQ(Count(html, "<pre>"), 1u);
}

TEST(RenderReportHtmlTest, BreakdownTableRows) {
  std::string html = RenderReportHtml(Sample());
  EXPECT_EQ(Count(html, "<tr><td class=\"num\""), 5u);
  EXPECT_THAT(html, HasSubstr("<td>main</td><td class=\"st-succeeded\">succeeded</td>"
                              "<td class=\"num\" data-v=\"2\">2</td>"));
  EXPECT_THAT(html, HasSubstr("critical path: discovery \u2192 main \u2192 report (15.00s)"));
}

TEST(RenderBreakdownTextTest, TableAndCriticalPath) {
  EXPECT_EQ(RenderBreakdownText(Sample()),
            "task                state                  attempts   start  duration  slow\n"
            "discovery           succeeded                     1      0s     2.00s\n"
            "scrape \"cboe\" & co  failed (non-critical)         2   2.00s     8.00s  SLOW\n"
            "main                succeeded                     2   2.00s    12.00s\n"
            "report              succeeded                     1  14.00s     1.00s\n"
            "late                upstream_failed               0       -         -\n"
            "5 tasks: 3 succeeded, 1 failed, 1 upstream_failed in 15.00s\n"
            "critical path: discovery -> main -> report (15.00s)\n");
}

TEST(RenderBreakdownTextTest, NoCriticalPathLineWithoutOne) {
  ReportData d;
  d.tasks.push_back({.name = "a", .state = "not_scheduled"});
  EXPECT_EQ(RenderBreakdownText(d),
            "task  state          attempts  start  duration  slow\n"
            "a     not_scheduled         0      -         -\n"
            "1 task: 1 not_scheduled in 0s\n");
}

TEST(TailLinesTest, LastLines) {
  EXPECT_EQ(TailLines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(TailLines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(TailLines("a\nb\n", 5), "a\nb\n");
  EXPECT_EQ(TailLines("", 3), "");
  EXPECT_EQ(TailLines("a\nb\n", 0), "");
}

TEST(ReadLogTailTest, ReadsOnlyTheEnd) {
  auto path =
      std::filesystem::temp_directory_path() / fmt::format("forklift_flow_log_{}", getpid());
  {
    std::ofstream out(path);
    for (int i = 1; i <= 10000; ++i) out << fmt::format("line {:05}\n", i);
  }
  auto tail = ReadLogTail(path.string(), 3, 1000);
  ASSERT_TRUE(tail) << tail.error().ToString();
  EXPECT_EQ(*tail, "line 09998\nline 09999\nline 10000\n");
  // max_bytes cuts mid-line: the partial first line is dropped.
  auto small = ReadLogTail(path.string(), 100, 25);
  ASSERT_TRUE(small);
  EXPECT_EQ(*small, "line 09999\nline 10000\n");
  std::filesystem::remove(path);
  auto missing = ReadLogTail(path.string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(HtmlEscapeTest, AllFiveCharacters) {
  EXPECT_EQ(HtmlEscape("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;");
}

}  // namespace
}  // namespace forklift::flow
