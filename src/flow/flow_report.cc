#include "flow/flow_report.h"

#include "flow/task_state.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>

#include "core/format_duration.h"

namespace forklift::flow {
namespace {

// Gantt geometry, in SVG pixels.
constexpr int kLabelWidth = 200;
constexpr int kPlotWidth = 880;
constexpr int kRowHeight = 22;
constexpr int kBarHeight = 14;
constexpr int kAxisHeight = 26;
constexpr size_t kLabelChars = 28;

std::string Seconds(double s) {
  if (!(s > 0)) return "0s";
  return core::FormatDuration(
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)));
}

// States become CSS class names; anything unexpected gets the neutral "other" so a state
// string can never break out of the attribute.
std::string CssState(std::string_view state) {
  if (state.empty() || state.size() > 32) return "other";
  for (char c : state) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return "other";
  }
  return std::string(state);
}

// Whether the task's state is `state`, read through the one spelling (task_state.h).
bool Is(const TaskReport& t, TaskState state) { return ParseTaskState(t.state) == state; }

double TaskStart(const TaskReport& t) {
  return t.attempts.empty() ? 0 : t.attempts.front().start_offset_s;
}
double TaskEnd(const TaskReport& t) {
  double end = 0;
  for (const auto& a : t.attempts) end = std::max(end, a.start_offset_s + a.duration_s);
  return end;
}
// First attempt's start to last attempt's end: retry delays included, as the user waited.
double TaskSpan(const TaskReport& t) { return t.attempts.empty() ? 0 : TaskEnd(t) - TaskStart(t); }

double WallSeconds(const ReportData& data) {
  if (data.wall_s > 0) return data.wall_s;
  double end = 0;
  for (const auto& t : data.tasks) end = std::max(end, TaskEnd(t));
  return end;
}

std::vector<const TaskReport*> CriticalChain(const ReportData& data) {
  std::vector<const TaskReport*> chain;
  for (const auto& t : data.tasks) {
    if (t.on_critical_path) chain.push_back(&t);
  }
  std::stable_sort(chain.begin(), chain.end(), [](const TaskReport* a, const TaskReport* b) {
    return TaskStart(*a) < TaskStart(*b);
  });
  return chain;
}

// Logs are terminal output: drop ANSI escape sequences and control characters, and keep
// what a terminal would show of a line rewritten with '\r' (progress bars).
std::string CleanLog(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t line_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {
      if (i + 1 < text.size() && text[i + 1] == '[') {
        i += 2;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '\r') {
      bool crlf = i + 1 < text.size() && text[i + 1] == '\n';
      if (!crlf) out.resize(line_start);
      continue;
    }
    if (c == '\n') {
      out += '\n';
      line_start = out.size();
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) continue;
    out += static_cast<char>(c);
  }
  return out;
}

// A tick step giving at most about ten ticks, on round values of seconds and minutes.
double TickStep(double total) {
  static constexpr double kSteps[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,  0.1,   0.2,   0.5,
                                      1,     2,     5,     10,   15,   30,    60,    120,   300,
                                      600,   900,   1800,  3600, 7200, 10800, 21600, 43200, 86400};
  for (double step : kSteps) {
    if (total / step <= 10) return step;
  }
  return std::ceil(total / 10 / 86400) * 86400;
}

std::string TickLabel(double s) {
  if (s == 0) return "0";
  if (s < 60) return fmt::format("{:g}s", s);
  auto total = static_cast<int64_t>(std::llround(s));
  if (total < 3600) {
    return total % 60 ? fmt::format("{}m{:02}s", total / 60, total % 60)
                      : fmt::format("{}m", total / 60);
  }
  return total % 3600 ? fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60)
                      : fmt::format("{}h", total / 3600);
}

std::string Truncated(std::string_view name) {
  if (name.size() <= kLabelChars) return std::string(name);
  // Cut on a UTF-8 character boundary.
  size_t cut = kLabelChars - 1;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xc0) == 0x80) --cut;
  return std::string(name.substr(0, cut)) + "\u2026";
}

constexpr std::string_view kStyle = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta span{margin-right:18px}.status{font-weight:bold}
.st-succeeded{color:#237a2f}.st-failed,.st-cancelled,.st-killed{color:#b3261e}
svg text{font:12px system-ui,sans-serif;fill:#222}
svg .axis line{stroke:#ccc}svg .axis text{fill:#666}
.stripe{fill:#f6f6f6}
.bar{stroke:none}.bar.cp{stroke:#000;stroke-width:2}
text.cp{font-weight:bold}text.slow{fill:#c77700;font-weight:bold}
.a-succeeded{fill:#3a9d4a}.a-failed{fill:#d9453b}.a-retried{fill:#f0a030}
.a-timed_out{fill:#8e1b14}.a-other{fill:#999}
.t-skipped{fill:#6a8caf}.t-upstream_failed{fill:#a0522d}.t-not_scheduled{fill:#999}
.t-other{fill:#999}
.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.sw-succeeded{background:#3a9d4a}.sw-failed{background:#d9453b}.sw-retried{background:#f0a030}
.sw-timed_out{background:#8e1b14}.sw-skipped{background:#6a8caf}
.sw-upstream_failed{background:#a0522d}.sw-not_scheduled{background:#999}
.sw-cp{background:#fff;border:2px solid #000;width:8px;height:8px}
table{border-collapse:collapse}
th,td{padding:3px 10px;text-align:left;border-bottom:1px solid #e5e5e5}
th{cursor:pointer;background:#f3f3f3}td.num{text-align:right}
pre{background:#1e1e1e;color:#eee;padding:10px;overflow-x:auto;max-height:480px}
)";

// Sorts the breakdown by a clicked column; numbers sort numerically via data-v.
constexpr std::string_view kScript = R"(
document.querySelectorAll('table.breakdown th').forEach(function(th, col) {
  th.addEventListener('click', function() {
    var body = th.closest('table').tBodies[0];
    var asc = th.dataset.asc !== '1';
    th.dataset.asc = asc ? '1' : '0';
    var key = function(row) {
      var cell = row.cells[col];
      var v = cell.dataset.v;
      return v !== undefined ? parseFloat(v) : cell.textContent;
    };
    Array.from(body.rows).sort(function(a, b) {
      var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    }).forEach(function(row) { body.appendChild(row); });
  });
});
)";

void RenderGantt(const ReportData& data, std::string& out) {
  double total = std::max(WallSeconds(data), 1e-3);
  double scale = kPlotWidth / total;
  int height = kAxisHeight + static_cast<int>(data.tasks.size()) * kRowHeight + 4;
  int width = kLabelWidth + kPlotWidth + 60;  // room for the "slow" flag past a full bar
  out += fmt::format(
      "<svg class=\"gantt\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"timeline of tasks\">\n",
      width, height, width, height);
  for (size_t row = 0; row < data.tasks.size(); row += 2) {
    out += fmt::format("<rect class=\"stripe\" x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n",
                       kAxisHeight + static_cast<int>(row) * kRowHeight, width, kRowHeight);
  }
  out += "<g class=\"axis\">\n";
  double step = TickStep(total);
  for (int i = 0; i * step <= total + step * 1e-9; ++i) {
    double x = kLabelWidth + i * step * scale;
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/><text x=\"{:.1f}\" y=\"{}\" "
        "text-anchor=\"middle\">{}</text>\n",
        x, kAxisHeight - 6, x, height, x, kAxisHeight - 10, TickLabel(i * step));
  }
  out += "</g>\n";
  for (size_t row = 0; row < data.tasks.size(); ++row) {
    const TaskReport& task = data.tasks[row];
    int y = kAxisHeight + static_cast<int>(row) * kRowHeight;
    std::string name = HtmlEscape(task.name);
    out += fmt::format("<g class=\"task\"><title>{} ({})</title>\n", name, HtmlEscape(task.state));
    out +=
        fmt::format("<text x=\"6\" y=\"{}\"{}>{}</text>\n", y + 15,
                    task.on_critical_path ? " class=\"cp\"" : "", HtmlEscape(Truncated(task.name)));
    if (task.attempts.empty()) {
      out += fmt::format("<text class=\"t-{}\" x=\"{}\" y=\"{}\">{}</text>\n", CssState(task.state),
                         kLabelWidth + 4, y + 15, HtmlEscape(task.state));
    }
    for (size_t i = 0; i < task.attempts.size(); ++i) {
      const AttemptReport& a = task.attempts[i];
      double x = kLabelWidth + a.start_offset_s * scale;
      double w = std::max(a.duration_s * scale, 1.0);  // an instant attempt stays visible
      out += fmt::format(
          "<rect class=\"bar a-{}{}\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" "
          "rx=\"2\"><title>{} attempt {}: {}, {}, {} at +{}</title></rect>\n",
          CssState(a.state), task.on_critical_path ? " cp" : "", x,
          y + (kRowHeight - kBarHeight) / 2, w, kBarHeight, name, i + 1, HtmlEscape(a.state),
          DescribeAttempt(a), Seconds(a.duration_s), Seconds(a.start_offset_s));
    }
    if (task.slow) {
      out += fmt::format("<text class=\"slow\" x=\"{:.1f}\" y=\"{}\">slow</text>\n",
                         kLabelWidth + TaskEnd(task) * scale + 4, y + 15);
    }
    out += "</g>\n";
  }
  out += "</svg>\n";
}

void RenderTable(const ReportData& data, std::string& out) {
  out +=
      "<table class=\"breakdown\"><thead><tr><th>#</th><th>task</th><th>state</th>"
      "<th>attempts</th><th>start</th><th>duration</th><th>slow</th><th>critical path</th>"
      "</tr></thead><tbody>\n";
  for (size_t i = 0; i < data.tasks.size(); ++i) {
    const TaskReport& t = data.tasks[i];
    bool ran = !t.attempts.empty();
    out += fmt::format(
        "<tr><td class=\"num\" data-v=\"{}\">{}</td><td>{}</td><td class=\"st-{}\">{}{}</td>"
        "<td class=\"num\" data-v=\"{}\">{}</td><td class=\"num\" data-v=\"{:.6f}\">{}</td>"
        "<td class=\"num\" data-v=\"{:.6f}\">{}</td><td>{}</td><td>{}</td></tr>\n",
        i + 1, i + 1, HtmlEscape(t.name), CssState(t.state), HtmlEscape(t.state),
        t.critical ? "" : " (non-critical)", t.attempts.size(), t.attempts.size(),
        ran ? TaskStart(t) : -1, ran ? Seconds(TaskStart(t)) : "-", TaskSpan(t),
        ran ? Seconds(TaskSpan(t)) : "-", t.slow ? "slow" : "", t.on_critical_path ? "yes" : "");
  }
  out += "</tbody></table>\n";
}

void RenderFailures(const ReportData& data, std::string& out) {
  bool any = false;
  for (const TaskReport& t : data.tasks) {
    if (!Is(t, TaskState::kFailed)) continue;
    if (!any) out += "<h2>Failures</h2>\n";
    any = true;
    std::string how = "never started";
    if (!t.attempts.empty()) {
      how = fmt::format("{} after {} attempt{}", DescribeAttempt(t.attempts.back()),
                        t.attempts.size(), t.attempts.size() == 1 ? "" : "s");
    }
    out += fmt::format("<h3>{}</h3>\n<p>{}{}</p>\n", HtmlEscape(t.name), how,
                       t.critical ? "" : " (non-critical: its dependents still ran)");
    std::string tail = TailLines(CleanLog(t.log_tail), kReportLogLines);
    if (tail.empty()) {
      out += "<p><em>no log output</em></p>\n";
    } else {
      out += fmt::format("<pre>{}</pre>\n", HtmlEscape(tail));
    }
  }
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string TailLines(std::string_view text, size_t max_lines) {
  if (max_lines == 0) return "";
  // A final newline ends the last line rather than starting an empty one.
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  size_t lines = 0;
  while (pos > 0) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string_view::npos) return std::string(text);
    if (++lines == max_lines) return std::string(text.substr(nl + 1));
    pos = nl;
  }
  return std::string(text);
}

Result<std::string> ReadLogTail(const std::string& path, size_t max_lines, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFoundError(fmt::format("{}: cannot read log", path));
  auto size = static_cast<size_t>(in.tellg());
  size_t take = std::min(size, max_bytes);
  in.seekg(static_cast<std::streamoff>(size - take));
  std::string text(take, '\0');
  in.read(text.data(), static_cast<std::streamsize>(take));
  text.resize(static_cast<size_t>(in.gcount()));
  if (take < size) {
    // The first line read is probably cut; drop it rather than show half a line.
    size_t nl = text.find('\n');
    text.erase(0, nl == std::string::npos ? 0 : nl + 1);
  }
  return TailLines(text, max_lines);
}

namespace {

void RenderPhases(const ReportData& data, std::string& out) {
  std::vector<PhaseRow> phases = PhaseRows(data);
  if (std::none_of(phases.begin(), phases.end(), [](const PhaseRow& p) { return p.is_group; })) {
    return;
  }
  out +=
      "<h2>Phases</h2>\n<table class=\"phases\"><thead><tr><th>phase</th><th>tasks</th>"
      "<th>wall time</th><th>critical path</th><th>failed</th></tr></thead><tbody>\n";
  for (const PhaseRow& p : phases) {
    out += fmt::format(
        "<tr><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{:.0f}%</td><td class=\"num\">{}</td></tr>\n",
        HtmlEscape(p.name), p.is_group ? "" : " <em>(task)</em>", p.tasks, Seconds(p.wall_s),
        p.critical_share * 100, p.failed);
  }
  out += "</tbody></table>\n";
}

void RenderSqlTags(const ReportData& data, std::string& out) {
  bool any = false;
  for (const TaskReport& t : data.tasks) {
    if (t.sql_tags.empty()) continue;
    if (!any) out += "<h2>SQL tasks</h2>\n<ul class=\"sql\">\n";
    any = true;
    std::string tags;
    for (const std::string& tag : t.sql_tags) tags += (tags.empty() ? "" : ", ") + HtmlEscape(tag);
    out += fmt::format("<li>{}: {}</li>\n", HtmlEscape(t.name), tags);
  }
  if (any) out += "</ul>\n";
}

void RenderFanouts(const ReportData& data, std::string& out) {
  bool any = false;
  for (const TaskReport& t : data.tasks) {
    if (!t.items_succeeded) continue;
    if (!any) out += "<h2>Fan-out tasks</h2>\n<ul class=\"fanout\">\n";
    any = true;
    uint64_t ok = *t.items_succeeded, failed = t.items_failed.value_or(0);
    std::string slowest;
    for (const auto& [cmd, secs] : t.slowest_items) {
      slowest += fmt::format("{}<code>{}</code> ({})", slowest.empty() ? "; slowest: " : ", ",
                             HtmlEscape(cmd), Seconds(secs));
    }
    out += fmt::format("<li>{}: {}/{} items succeeded, {} failed{}</li>\n", HtmlEscape(t.name), ok,
                       ok + failed, failed, slowest);
  }
  if (any) out += "</ul>\n";
}

void RenderHooks(const ReportData& data, std::string& out) {
  if (data.hooks.empty()) return;
  out += "<h2>Hooks</h2>\n<ul class=\"hooks\">\n";
  for (const HookReport& h : data.hooks) {
    out += fmt::format("<li class=\"{}\">{}{}: {} ({})</li>\n", h.ok ? "st-succeeded" : "st-failed",
                       HtmlEscape(h.hook), h.task.empty() ? "" : " of " + HtmlEscape(h.task),
                       HtmlEscape(h.outcome), Seconds(h.duration_s));
  }
  out += "</ul>\n";
}

}  // namespace

std::vector<PhaseRow> PhaseRows(const ReportData& data) {
  std::vector<PhaseRow> rows;
  std::map<std::string, size_t> index;               // group -> row
  std::map<size_t, std::pair<double, double>> span;  // row -> first start, last end
  double critical_total = 0;
  for (const TaskReport& t : data.tasks) {
    if (t.on_critical_path) critical_total += TaskSpan(t);
  }
  for (const TaskReport& t : data.tasks) {
    size_t row;
    if (t.group.empty()) {
      row = rows.size();
      rows.push_back({t.name, false});
    } else if (auto it = index.find(t.group); it != index.end()) {
      row = it->second;
    } else {
      row = rows.size();
      index.emplace(t.group, row);
      rows.push_back({t.group, true});
    }
    PhaseRow& p = rows[row];
    ++p.tasks;
    if (Is(t, TaskState::kFailed) || Is(t, TaskState::kCancelled)) ++p.failed;
    if (!t.attempts.empty()) {
      auto [it, fresh] = span.emplace(row, std::make_pair(TaskStart(t), TaskEnd(t)));
      if (!fresh) {
        it->second.first = std::min(it->second.first, TaskStart(t));
        it->second.second = std::max(it->second.second, TaskEnd(t));
      }
    }
    if (t.on_critical_path && critical_total > 0) p.critical_share += TaskSpan(t) / critical_total;
  }
  for (const auto& [row, se] : span) rows[row].wall_s = se.second - se.first;
  return rows;
}

std::string RenderReportHtml(const ReportData& data) {
  std::string out;
  std::string flow = HtmlEscape(data.flow_name);
  std::string run = HtmlEscape(data.run_id);
  std::string started = fmt::format("{:%Y-%m-%d %H:%M:%S} UTC",
                                    fmt::gmtime(static_cast<std::time_t>(data.started_unix_s)));
  out += fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>forklift flow {} run {}</title>\n<style>{}</style></head><body>\n",
      flow, run, kStyle);
  out += fmt::format(
      "<h1>flow {}</h1>\n<p class=\"meta\"><span>run {}</span>"
      "<span class=\"status st-{}\">{}</span><span>started {}</span>"
      "<span>wall time {}</span><span>{} task{}</span></p>\n",
      flow, run, CssState(data.status), HtmlEscape(data.status), started,
      Seconds(WallSeconds(data)), data.tasks.size(), data.tasks.size() == 1 ? "" : "s");

  out += "<h2>Timeline</h2>\n<p class=\"legend\">";
  // Attempt states (retried, timed_out) beside the task states a bar can take.
  for (std::string_view s :
       {ToString(TaskState::kSucceeded), ToString(TaskState::kFailed), std::string_view("retried"),
        std::string_view("timed_out"), ToString(TaskState::kSkipped),
        ToString(TaskState::kUpstreamFailed), ToString(TaskState::kNotScheduled)}) {
    out += fmt::format("<span><i class=\"swatch sw-{}\"></i>{}</span>", s, s);
  }
  out += "<span><i class=\"swatch sw-cp\"></i>critical path</span></p>\n";
  RenderGantt(data, out);

  auto chain = CriticalChain(data);
  out += "<h2>Breakdown</h2>\n";
  if (!chain.empty()) {
    std::string names;
    double sum = 0;
    for (const TaskReport* t : chain) {
      names += (names.empty() ? "" : " \u2192 ") + HtmlEscape(t->name);
      sum += TaskSpan(*t);
    }
    out += fmt::format("<p>critical path: {} ({})</p>\n", names, Seconds(sum));
  }
  RenderTable(data, out);
  RenderPhases(data, out);
  RenderSqlTags(data, out);
  RenderFanouts(data, out);
  RenderFailures(data, out);
  RenderHooks(data, out);
  out += fmt::format("<script>{}</script>\n</body></html>\n", kScript);
  return out;
}

std::string RenderBreakdownText(const ReportData& data) {
  struct Row {
    std::string cells[6];
  };
  std::vector<Row> rows;
  rows.push_back({{"task", "state", "attempts", "start", "duration", "slow"}});
  for (const TaskReport& t : data.tasks) {
    bool ran = !t.attempts.empty();
    std::string state = t.state;
    if (!t.critical && Is(t, TaskState::kFailed)) state += " (non-critical)";
    rows.push_back(
        {{t.name, state, std::to_string(t.attempts.size()), ran ? Seconds(TaskStart(t)) : "-",
          ran ? Seconds(TaskSpan(t)) : "-", t.slow ? "SLOW" : ""}});
  }
  size_t widths[6] = {};
  for (const Row& r : rows) {
    for (size_t c = 0; c < 6; ++c) widths[c] = std::max(widths[c], r.cells[c].size());
  }
  std::string out;
  for (const Row& r : rows) {
    std::string line;
    for (size_t c = 0; c < 6; ++c) {
      // Counts and times read best right-aligned.
      bool right = c >= 2 && c <= 4;
      line += right ? fmt::format("{:>{}}", r.cells[c], widths[c])
                    : fmt::format("{:<{}}", r.cells[c], widths[c]);
      if (c < 5) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  // "12 tasks: 10 succeeded, 1 failed, 1 upstream_failed", states in first-seen order.
  std::vector<std::pair<std::string, int>> counts;
  for (const TaskReport& t : data.tasks) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& c) { return c.first == t.state; });
    if (it == counts.end()) {
      counts.emplace_back(t.state, 1);
    } else {
      ++it->second;
    }
  }
  out += fmt::format("{} task{}", data.tasks.size(), data.tasks.size() == 1 ? "" : "s");
  const char* separator = ": ";
  for (const auto& [state, n] : counts) {
    out += fmt::format("{}{} {}", separator, n, state);
    separator = ", ";
  }
  out += fmt::format(" in {}\n", Seconds(WallSeconds(data)));
  auto chain = CriticalChain(data);
  if (!chain.empty()) {
    std::string names;
    double sum = 0;
    for (const TaskReport* t : chain) {
      names += (names.empty() ? "" : " -> ") + t->name;
      sum += TaskSpan(*t);
    }
    out += fmt::format("critical path: {} ({})\n", names, Seconds(sum));
  }
  std::vector<PhaseRow> phases = PhaseRows(data);
  if (std::any_of(phases.begin(), phases.end(), [](const PhaseRow& p) { return p.is_group; })) {
    out += "phases:\n";
    size_t width = 0;
    for (const PhaseRow& p : phases) width = std::max(width, p.name.size());
    for (const PhaseRow& p : phases) {
      out +=
          fmt::format("  {:<{}}  {:>3} task{}  {:>9}  {:>3.0f}% of the critical path{}\n", p.name,
                      width, p.tasks, p.tasks == 1 ? " " : "s", Seconds(p.wall_s),
                      p.critical_share * 100, p.failed ? fmt::format(", {} failed", p.failed) : "");
    }
  }
  for (const TaskReport& t : data.tasks) {
    if (t.sql_tags.empty()) continue;
    std::string tags;
    for (const std::string& tag : t.sql_tags) tags += (tags.empty() ? "" : ", ") + tag;
    out += fmt::format("sql {}: {}\n", t.name, tags);
  }
  for (const TaskReport& t : data.tasks) {
    if (!t.items_succeeded) continue;
    uint64_t ok = *t.items_succeeded, failed = t.items_failed.value_or(0);
    out += fmt::format("foreach {}: {}/{} items succeeded, {} failed", t.name, ok, ok + failed,
                       failed);
    const char* sep = "; slowest: ";
    for (const auto& [cmd, secs] : t.slowest_items) {
      out += fmt::format("{}{} ({})", sep, cmd.size() > 60 ? cmd.substr(0, 57) + "..." : cmd,
                         Seconds(secs));
      sep = ", ";
    }
    out += "\n";
  }
  for (const HookReport& h : data.hooks) {
    out += fmt::format("hook {}{}: {}{}\n", h.hook, h.task.empty() ? "" : " of " + h.task,
                       h.outcome, h.ok ? "" : " (FAILED; the run's status stands)");
  }
  return out;
}

}  // namespace forklift::flow
