#include "flow/flow_file.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/duration_parse.h"
#include "flow/brace_expansion.h"

namespace forklift::flow {
namespace {

const std::vector<std::string> kTopKeys = {"name",        "log_dir",      "pools",     "tasks",
                                           "on_success",  "on_failure",   "on_finish", "on_alert",
                                           "alert_after", "hook_timeout", "databases"};
const std::vector<std::string> kTaskKeys = {
    "cmd",         "after",   "critical",    "timeout",    "retries",   "retry_delay",
    "alert_after", "pool",    "env",         "cwd",        "days",      "outputs",
    "inputs",      "run_if",  "group",       "on_failure", "sql",       "sql_file",
    "db",          "foreach", "foreach_cmd", "jobs",       "max_failed"};
const std::vector<std::string> kRunIfValues = {"on_success", "all_done", "always"};
// Index = struct tm's tm_wday, so TaskSpec::days_mask tests against localtime() directly.
const std::vector<std::string> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

std::string_view Article(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

int LineOf(const toml::source_region& region) { return static_cast<int>(region.begin.line); }

std::string Hint(std::string_view word, std::span<const std::string> candidates) {
  auto close = ClosestName(word, candidates);
  return close ? fmt::format(" (did you mean '{}'?)", *close) : std::string();
}

bool IsDatabaseUrl(std::string_view v) {
  return v.starts_with("postgres://") || v.starts_with("postgresql://") || v.starts_with("sqlite:");
}

// A `db` value as it may be shown: a URL's password is never echoed.
std::string MaskedDb(std::string_view v) {
  size_t scheme = v.find("://");
  size_t at = v.find('@');
  if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme) {
    return v.size() > 60 ? std::string(v.substr(0, 57)) + "..." : std::string(v);
  }
  return std::string(v.substr(0, scheme + 3)) + "***@" + std::string(v.substr(at + 1));
}

bool IsFlowNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

bool IsTaskNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Collects every problem with its line and reports the earliest, so the user fixes the
// file top to bottom no matter in which order toml++'s maps hand keys back.
class Parser {
 public:
  explicit Parser(std::string_view path) : path_(path) {}

  Result<FlowSpec> Parse(const toml::table& root);

 private:
  void Fail(int line, std::string_view where, std::string what) {
    std::string message = where.empty() ? fmt::format("{}:{}: {}", path_, line, what)
                                        : fmt::format("{}:{}: {}: {}", path_, line, where, what);
    errors_.push_back({line, std::move(message)});
  }
  void TypeMismatch(const toml::key& key, const toml::node& node, std::string_view where,
                    std::string_view expected) {
    Fail(LineOf(key.source()), where, fmt::format("expected {}, got {}", expected, Article(node)));
  }

  void ParsePools(const toml::node& node, FlowSpec& spec);
  void ParseDatabases(const toml::node& node, FlowSpec& spec);
  void ParseTask(const toml::key& key, const toml::node& node,
                 const std::vector<std::string>& task_names,
                 const std::unordered_set<std::string_view>& known, FlowSpec& spec);
  // One key of a task's table.
  struct TaskKey {
    const toml::key& key;
    const toml::node& value;
    std::string name;   // the key
    std::string where;  // "tasks.NAME.KEY", for messages
  };
  // Parses one key into `task` (recording problems); false for a key tasks do not have.
  bool ParseTaskKey(const TaskKey& k, const std::vector<std::string>& task_names,
                    const std::unordered_set<std::string_view>& known, const FlowSpec& spec,
                    TaskSpec& task);
  void ParseAfter(const TaskKey& k, const std::vector<std::string>& task_names,
                  const std::unordered_set<std::string_view>& known, TaskSpec& task);
  void ParseRunIf(const TaskKey& k, TaskSpec& task);
  void ParseDb(const TaskKey& k, const FlowSpec& spec, TaskSpec& task);
  void ParseTaskCount(const TaskKey& k, TaskSpec& task);
  void ParseMaxFailed(const TaskKey& k, TaskSpec& task);
  void ParsePool(const TaskKey& k, const FlowSpec& spec, TaskSpec& task);
  void ParseEnv(const TaskKey& k, TaskSpec& task);
  void ParseDays(const TaskKey& k, TaskSpec& task);
  void ParseGlobs(const TaskKey& k, std::vector<std::string>& out);
  void CheckTaskShape(const toml::table& table, const std::string& task_where,
                      const TaskSpec& task);
  // Fills `out` from a non-empty string; false (after Fail) otherwise.
  bool ParseNonEmptyString(const toml::key& key, const toml::node& node, const std::string& where,
                           std::string& out);
  // Fills `out` from a duration string with a unit ("15m"); false on error.
  bool ParseDurationValue(const toml::key& key, const toml::node& node, const std::string& where,
                          bool must_be_positive, Duration& out);
  // Fills `out` from an array of non-empty strings; false (after Fail) on error.
  bool ParseStringArray(const toml::key& key, const toml::node& node, const std::string& where,
                        std::vector<std::pair<std::string, int>>& out);

  std::string path_;
  std::vector<std::pair<int, std::string>> errors_;
};

bool Parser::ParseDurationValue(const toml::key& key, const toml::node& node,
                                const std::string& where, bool must_be_positive, Duration& out) {
  int line = LineOf(key.source());
  Result<Duration> parsed = InvalidArgumentError("");
  if (const auto* s = node.as_string()) {
    // A bare number in a string ("30") is refused like a TOML number: seconds or minutes?
    parsed = core::ParseDuration(s->get(), core::BareNumber::kRefused);
  } else if (node.is_integer() || node.is_floating_point()) {
    std::string number = node.is_integer() ? fmt::format("{}", node.as_integer()->get())
                                           : fmt::format("{}", node.as_floating_point()->get());
    Fail(line, where,
         fmt::format("a duration needs a unit: write \"{}s\" for seconds (or \"{}m\", "
                     "\"{}h\", \"{}ms\")",
                     number, number, number, number));
    return false;
  } else {
    TypeMismatch(key, node, where, "a duration such as \"30s\" or \"15m\"");
    return false;
  }
  if (!parsed) {
    Fail(line, where, parsed.error().message);
    return false;
  }
  if (must_be_positive && *parsed <= Duration::zero()) {
    Fail(line, where, "must be greater than 0");
    return false;
  }
  out = *parsed;
  return true;
}

bool Parser::ParseStringArray(const toml::key& key, const toml::node& node,
                              const std::string& where,
                              std::vector<std::pair<std::string, int>>& out) {
  const auto* array = node.as_array();
  if (!array) {
    TypeMismatch(key, node, where, "an array of strings");
    return false;
  }
  for (const toml::node& element : *array) {
    const auto* s = element.as_string();
    int line = LineOf(element.source());
    if (!s) {
      Fail(line, where,
           fmt::format("expected an array of strings, got {} in it", Article(element)));
      return false;
    }
    if (s->get().empty()) {
      Fail(line, where, "empty string in the array");
      return false;
    }
    out.emplace_back(s->get(), line);
  }
  return true;
}

void Parser::ParsePools(const toml::node& node, FlowSpec& spec) {
  const auto* table = node.as_table();
  if (!table) {
    Fail(LineOf(node.source()), "pools", fmt::format("expected a table, got {}", Article(node)));
    return;
  }
  for (auto&& [key, value] : *table) {
    std::string where = fmt::format("pools.{}", key.str());
    const auto* n = value.as_integer();
    if (!n) {
      TypeMismatch(key, value, where, "an integer >= 1");
    } else if (n->get() < 1 || n->get() > INT_MAX) {
      Fail(LineOf(key.source()), where, fmt::format("limit must be >= 1, got {}", n->get()));
    } else {
      spec.pools[std::string(key.str())] = static_cast<int>(n->get());
    }
  }
}

void Parser::ParseDatabases(const toml::node& node, FlowSpec& spec) {
  const auto* table = node.as_table();
  if (!table) {
    Fail(LineOf(node.source()), "databases",
         fmt::format("expected a table of NAME = \"URL\", got {}", Article(node)));
    return;
  }
  for (auto&& [key, value] : *table) {
    std::string name(key.str());
    std::string where = "databases." + name;
    int line = LineOf(key.source());
    if (!value.is_string()) {
      TypeMismatch(key, value, where, "a string (postgres://... or sqlite:PATH)");
      continue;
    }
    // ${VAR} from the environment, so passwords stay out of the file; ${VAR:-DEFAULT}, as
    // in sh, takes DEFAULT (literal text) when VAR is unset or empty, so one flow file can
    // run on an embedded default and on a server the environment names.
    const std::string& raw = value.as_string()->get();
    std::string dsn;
    bool ok = true;
    for (size_t i = 0; i < raw.size();) {
      if (raw.compare(i, 2, "${") == 0) {
        size_t end = raw.find('}', i + 2);
        if (end == std::string::npos) {
          Fail(line, where, "an unclosed '${'");
          ok = false;
          break;
        }
        std::string var = raw.substr(i + 2, end - i - 2);
        std::optional<std::string> fallback;
        if (size_t dash = var.find(":-"); dash != std::string::npos) {
          fallback = var.substr(dash + 2);
          var.resize(dash);
        }
        const char* v = std::getenv(var.c_str());
        if (fallback && (!v || !*v)) {
          dsn += *fallback;
        } else if (!v) {
          Fail(line, where, fmt::format("${{{}}} is not set in the environment", var));
          ok = false;
          break;
        } else {
          dsn += v;
        }
        i = end + 1;
      } else {
        dsn += raw[i++];
      }
    }
    if (!ok) continue;
    if (!IsDatabaseUrl(dsn)) {
      Fail(line, where, "expected a postgres://, postgresql:// or sqlite: URL");
      continue;
    }
    spec.databases[name] = std::move(dsn);
  }
}

bool Parser::ParseNonEmptyString(const toml::key& key, const toml::node& node,
                                 const std::string& where, std::string& out) {
  if (!node.is_string()) {
    TypeMismatch(key, node, where, "a string");
    return false;
  }
  if (node.as_string()->get().empty()) {
    Fail(LineOf(key.source()), where, "must not be empty");
    return false;
  }
  out = node.as_string()->get();
  return true;
}

void Parser::ParseTask(const toml::key& task_key, const toml::node& node,
                       const std::vector<std::string>& task_names,
                       const std::unordered_set<std::string_view>& known, FlowSpec& spec) {
  std::string name(task_key.str());
  std::string task_where = "tasks." + name;
  const auto* table = node.as_table();
  if (!table) {
    TypeMismatch(task_key, node, task_where, "a table");
    return;
  }
  TaskSpec task;
  task.name = name;
  task.line = LineOf(node.source());
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsTaskNameChar)) {
    // Names become log file names and CLI arguments; keep them plain.
    Fail(task.line, task_where, "a task name may contain only letters, digits, '_' and '-'");
    return;
  }
  for (auto&& [key, value] : *table) {
    TaskKey k{.key = key, .value = value, .name = std::string(key.str()), .where = {}};
    k.where = task_where + "." + k.name;
    if (!ParseTaskKey(k, task_names, known, spec, task)) {
      Fail(LineOf(key.source()), task_where,
           fmt::format("unknown key '{}'{}", k.name, Hint(k.name, kTaskKeys)));
    }
  }
  CheckTaskShape(*table, task_where, task);
  if (!task.outputs.empty() && task.inputs.empty()) {
    spec.warnings.push_back(
        fmt::format("{}:{}: {}: 'outputs' without 'inputs': once its outputs exist the task stays "
                    "up to date until its command changes (add 'inputs', or run with --force)",
                    path_, task.line, task_where));
  }
  spec.tasks.push_back(std::move(task));
}

bool Parser::ParseTaskKey(const TaskKey& k, const std::vector<std::string>& task_names,
                          const std::unordered_set<std::string_view>& known, const FlowSpec& spec,
                          TaskSpec& task) {
  const std::string& n = k.name;
  if (n == "cmd") {
    ParseNonEmptyString(k.key, k.value, k.where, task.cmd);
  } else if (n == "after") {
    ParseAfter(k, task_names, known, task);
  } else if (n == "critical") {
    if (!k.value.is_boolean()) {
      TypeMismatch(k.key, k.value, k.where, "true or false");
    } else {
      task.critical = k.value.as_boolean()->get();
    }
  } else if (n == "timeout" || n == "alert_after") {
    Duration d{};
    if (ParseDurationValue(k.key, k.value, k.where, /*must_be_positive=*/true, d)) {
      (n == "timeout" ? task.timeout : task.alert_after) = d;
    }
  } else if (n == "retry_delay") {
    ParseDurationValue(k.key, k.value, k.where, /*must_be_positive=*/false, task.retry_delay);
  } else if (n == "run_if") {
    ParseRunIf(k, task);
  } else if (n == "sql" || n == "sql_file") {
    ParseNonEmptyString(k.key, k.value, k.where, n == "sql" ? task.sql : task.sql_file);
  } else if (n == "db") {
    ParseDb(k, spec, task);
  } else if (n == "foreach" || n == "foreach_cmd") {
    ParseNonEmptyString(k.key, k.value, k.where, n == "foreach" ? task.foreach : task.foreach_cmd);
  } else if (n == "group" || n == "on_failure") {
    ParseNonEmptyString(k.key, k.value, k.where, n == "group" ? task.group : task.on_failure);
  } else if (n == "jobs" || n == "retries") {
    ParseTaskCount(k, task);
  } else if (n == "max_failed") {
    ParseMaxFailed(k, task);
  } else if (n == "pool") {
    ParsePool(k, spec, task);
  } else if (n == "env") {
    ParseEnv(k, task);
  } else if (n == "cwd") {
    if (!k.value.is_string()) {
      TypeMismatch(k.key, k.value, k.where, "a string");
    } else {
      task.cwd = k.value.as_string()->get();
    }
  } else if (n == "days") {
    ParseDays(k, task);
  } else if (n == "outputs" || n == "inputs") {
    ParseGlobs(k, n == "outputs" ? task.outputs : task.inputs);
  } else {
    return false;
  }
  return true;
}

void Parser::ParseAfter(const TaskKey& k, const std::vector<std::string>& task_names,
                        const std::unordered_set<std::string_view>& known, TaskSpec& task) {
  std::vector<std::pair<std::string, int>> after;
  if (!ParseStringArray(k.key, k.value, k.where, after)) return;
  // Sets, not scans: generated flows have tasks after thousands of others.
  std::unordered_set<std::string_view> seen;
  for (const auto& [dep, dep_line] : after) {
    if (!known.contains(dep)) {
      Fail(dep_line, k.where, fmt::format("unknown task '{}'{}", dep, Hint(dep, task_names)));
    } else if (!seen.insert(dep).second) {
      Fail(dep_line, k.where, fmt::format("'{}' is listed twice", dep));
    } else {
      task.after.push_back(dep);
    }
  }
}

void Parser::ParseRunIf(const TaskKey& k, TaskSpec& task) {
  if (!k.value.is_string()) {
    TypeMismatch(k.key, k.value, k.where, "\"all_done\" or \"always\"");
    return;
  }
  const std::string& v = k.value.as_string()->get();
  if (v == "all_done") {
    task.run_if = RunIf::kAllDone;
  } else if (v == "always") {
    task.run_if = RunIf::kAlways;
  } else if (v != "on_success") {
    Fail(LineOf(k.key.source()), k.where,
         fmt::format("unknown value '{}'{} (one of: on_success, all_done, always)", v,
                     Hint(v, kRunIfValues)));
  }
}

void Parser::ParseDb(const TaskKey& k, const FlowSpec& spec, TaskSpec& task) {
  std::string v;
  if (!ParseNonEmptyString(k.key, k.value, k.where, v)) return;
  if (!spec.databases.contains(v) && !IsDatabaseUrl(v)) {
    std::vector<std::string> names;
    for (const auto& [name, dsn] : spec.databases) names.push_back(name);
    Fail(LineOf(k.key.source()), k.where,
         fmt::format("'{}' is neither a [databases] name{} nor a postgres://, postgresql:// "
                     "or sqlite: URL",
                     MaskedDb(v), Hint(v, names)));
    return;
  }
  task.db = std::move(v);
}

// `jobs` (1 to 2^20, a fan-out's parallelism) and `retries` (>= 0).
void Parser::ParseTaskCount(const TaskKey& k, TaskSpec& task) {
  const bool jobs = k.name == "jobs";
  const auto* n = k.value.as_integer();
  if (!n) {
    TypeMismatch(k.key, k.value, k.where, jobs ? "an integer >= 1" : "an integer >= 0");
    return;
  }
  const int line = LineOf(k.key.source());
  if (jobs && (n->get() < 1 || n->get() > 1 << 20)) {
    Fail(line, k.where, fmt::format("must be an integer from 1 to {}, got {}", 1 << 20, n->get()));
  } else if (!jobs && (n->get() < 0 || n->get() > INT_MAX)) {
    Fail(line, k.where, fmt::format("must be an integer >= 0, got {}", n->get()));
  } else {
    (jobs ? task.jobs : task.retries) = static_cast<int>(n->get());
  }
}

void Parser::ParseMaxFailed(const TaskKey& k, TaskSpec& task) {
  const int line = LineOf(k.key.source());
  if (const auto* n = k.value.as_integer()) {
    if (n->get() < 0) {
      Fail(line, k.where, fmt::format("must be >= 0, got {}", n->get()));
    } else {
      task.max_failed = n->get();
    }
  } else if (const auto* str = k.value.as_string()) {
    const std::string& v = str->get();
    char* end = nullptr;
    double pct = v.size() > 1 && v.back() == '%' ? std::strtod(v.c_str(), &end) : -1;
    if (!end || end != v.c_str() + v.size() - 1 || !(pct >= 0 && pct <= 100)) {
      Fail(line, k.where, fmt::format("'{}' is not a count or a percentage like \"5%\"", v));
    } else {
      task.max_failed_percent = pct;
    }
  } else {
    TypeMismatch(k.key, k.value, k.where, "a count (3) or a percentage (\"5%\")");
  }
}

void Parser::ParsePool(const TaskKey& k, const FlowSpec& spec, TaskSpec& task) {
  if (!k.value.is_string()) {
    TypeMismatch(k.key, k.value, k.where, "a string");
    return;
  }
  std::string pool = k.value.as_string()->get();
  if (!spec.pools.contains(pool)) {
    std::vector<std::string> declared;
    for (const auto& [pool_name, limit] : spec.pools) declared.push_back(pool_name);
    Fail(LineOf(k.key.source()), k.where,
         fmt::format("pool '{}' is not declared in [pools]{}", pool, Hint(pool, declared)));
    return;
  }
  task.pool = std::move(pool);
}

void Parser::ParseEnv(const TaskKey& k, TaskSpec& task) {
  const auto* env = k.value.as_table();
  if (!env) {
    TypeMismatch(k.key, k.value, k.where, "a table of strings");
    return;
  }
  for (auto&& [env_key, env_value] : *env) {
    std::string var(env_key.str());
    std::string env_where = k.where + "." + var;
    if (var.empty() || var.find('=') != std::string::npos) {
      Fail(LineOf(env_key.source()), env_where, "not a valid variable name");
    } else if (!env_value.is_string()) {
      TypeMismatch(env_key, env_value, env_where, "a string");
    } else {
      task.env[var] = env_value.as_string()->get();
    }
  }
}

void Parser::ParseDays(const TaskKey& k, TaskSpec& task) {
  std::vector<std::pair<std::string, int>> days;
  if (!ParseStringArray(k.key, k.value, k.where, days)) return;
  for (const auto& [day, day_line] : days) {
    auto it = std::find(kDayNames.begin(), kDayNames.end(), day);
    if (it == kDayNames.end()) {
      Fail(day_line, k.where,
           fmt::format("unknown day '{}' (use mon, tue, wed, thu, fri, sat, sun){}", day,
                       Hint(day, kDayNames)));
    } else {
      task.days_mask |= static_cast<uint8_t>(1u << (it - kDayNames.begin()));
    }
  }
}

void Parser::ParseGlobs(const TaskKey& k, std::vector<std::string>& out) {
  std::vector<std::pair<std::string, int>> globs;
  if (!ParseStringArray(k.key, k.value, k.where, globs)) return;
  for (auto& [glob, glob_line] : globs) {
    // Expanded here only to refuse a pattern too big to expand (brace_expansion.h).
    if (auto expanded = ExpandBraces(glob); !expanded) {
      Fail(glob_line, k.where, expanded.error().message);
      continue;
    }
    out.push_back(std::move(glob));
  }
}

// What a task is: exactly one of cmd, sql and sql_file; db for SQL only; foreach with a
// per-item cmd.
void Parser::CheckTaskShape(const toml::table& table, const std::string& task_where,
                            const TaskSpec& task) {
  int kinds = table.contains("cmd") + table.contains("sql") + table.contains("sql_file");
  if (kinds == 0) {
    Fail(task.line, task_where, "missing required key 'cmd' (or 'sql' / 'sql_file' with 'db')");
  } else if (kinds > 1) {
    Fail(task.line, task_where, "give one of 'cmd', 'sql' and 'sql_file'");
  } else if (table.contains("cmd") && table.contains("db")) {
    Fail(task.line, task_where, "'db' is for SQL tasks ('sql' or 'sql_file'), not 'cmd'");
  } else if (!table.contains("cmd") && !table.contains("db")) {
    Fail(task.line, task_where, "a SQL task needs 'db' (a [databases] name or a URL)");
  }
  if (!task.foreach.empty() && !task.foreach_cmd.empty()) {
    Fail(task.line, task_where, "give one of 'foreach' and 'foreach_cmd'");
  } else if (task.is_fanout() && task.cmd.empty()) {
    Fail(task.line, task_where, "'foreach' and 'foreach_cmd' need 'cmd', the command per item");
  } else if (!task.is_fanout() && (table.contains("jobs") || table.contains("max_failed"))) {
    Fail(task.line, task_where, "'jobs' and 'max_failed' are for fan-out tasks ('foreach')");
  }
}

Result<FlowSpec> Parser::Parse(const toml::table& root) {
  FlowSpec spec;
  spec.path = path_;
  spec.name = std::filesystem::path(path_).stem().string();
  for (char& c : spec.name) {
    if (!IsFlowNameChar(c)) c = '_';
  }
  if (spec.name.empty() || spec.name[0] == '.') spec.name.insert(0, "flow");
  for (auto&& [key, value] : root) {
    std::string k(key.str());
    int line = LineOf(key.source());
    if (k == "name" || k == "log_dir") {
      if (!value.is_string()) {
        TypeMismatch(key, value, k, "a string");
      } else if (value.as_string()->get().empty()) {
        Fail(line, k, "must not be empty");
      } else if (const std::string& n = value.as_string()->get();
                 k == "name" && (n.size() > 128 || n[0] == '.' ||
                                 !std::all_of(n.begin(), n.end(), IsFlowNameChar))) {
        Fail(line, k,
             "a flow name may contain only letters, digits, '_', '-' and '.', must not start "
             "with '.', and has at most 128 characters (it names the run's log directory "
             "and lock file)");
      } else {
        (k == "name" ? spec.name : spec.log_dir) = value.as_string()->get();
      }
    } else if (k == "on_success" || k == "on_failure" || k == "on_finish" || k == "on_alert") {
      if (!value.is_string()) {
        TypeMismatch(key, value, k, "a string");
      } else if (value.as_string()->get().empty()) {
        Fail(line, k, "must not be empty");
      } else {
        std::string& hook = k == "on_success"   ? spec.on_success
                            : k == "on_failure" ? spec.on_failure
                            : k == "on_finish"  ? spec.on_finish
                                                : spec.on_alert;
        hook = value.as_string()->get();
      }
    } else if (k == "alert_after" || k == "hook_timeout") {
      Duration d{};
      if (ParseDurationValue(key, value, k, /*must_be_positive=*/true, d)) {
        if (k == "alert_after") {
          spec.alert_after = d;
        } else {
          spec.hook_timeout = d;
        }
      }
    } else if (k == "pools") {
      ParsePools(value, spec);
    } else if (k == "databases") {
      ParseDatabases(value, spec);
    } else if (k != "tasks") {
      Fail(line, "", fmt::format("unknown top-level key '{}'{}", k, Hint(k, kTopKeys)));
    }
  }
  // Tasks after pools: a task's pool is checked against the declared ones.
  if (const toml::node* tasks_node = root.get("tasks")) {
    const auto* tasks = tasks_node->as_table();
    if (!tasks) {
      Fail(LineOf(tasks_node->source()), "tasks",
           fmt::format("expected a table of tasks, got {}", Article(*tasks_node)));
    } else {
      std::vector<std::string> task_names;
      for (auto&& [key, value] : *tasks) task_names.emplace_back(key.str());
      std::unordered_set<std::string_view> known(task_names.begin(), task_names.end());
      struct Entry {
        const toml::key* key;
        const toml::node* node;
      };
      std::vector<Entry> entries;
      for (auto&& [key, value] : *tasks) entries.push_back({&key, &value});
      // toml++ tables are maps: recover the order the user wrote the tasks in.
      std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        const auto& x = a.node->source().begin;
        const auto& y = b.node->source().begin;
        return std::pair(x.line, x.column) < std::pair(y.line, y.column);
      });
      for (const Entry& e : entries) ParseTask(*e.key, *e.node, task_names, known, spec);
    }
  }
  if (!errors_.empty()) {
    auto first = std::min_element(errors_.begin(), errors_.end(),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    return InvalidArgumentError(first->second);
  }
  if (spec.tasks.empty()) {
    return InvalidArgumentError(
        fmt::format("{}: no tasks (add a [tasks.NAME] table with a cmd)", path_));
  }
  FORKLIFT_RETURN_IF_ERROR(CheckGraph(spec));
  return spec;
}

// toml++ rejects a second [tasks.X] itself; name the task and where it first appeared
// instead of only echoing "cannot redefine existing table".
std::string DuplicateTaskMessage(std::string_view text, std::string_view path, int line,
                                 std::string_view description) {
  constexpr std::string_view kMarker = "cannot redefine existing table 'tasks.";
  size_t at = description.find(kMarker);
  if (at == std::string_view::npos) return "";
  std::string_view rest = description.substr(at + kMarker.size());
  size_t quote = rest.find('\'');
  if (quote == std::string_view::npos) return "";
  std::string_view name = rest.substr(0, quote);
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsTaskNameChar)) return "";
  std::string header = fmt::format("[tasks.{}]", name);
  int first_line = 0;
  int line_no = 0;
  std::istringstream lines{std::string(text)};
  for (std::string l; std::getline(lines, l);) {
    ++line_no;
    std::string squeezed;
    for (char c : l) {
      if (c == '#') break;
      if (c != ' ' && c != '\t' && c != '\r') squeezed += c;
    }
    if (squeezed == header) {
      first_line = line_no;
      break;
    }
  }
  std::string message = fmt::format("{}:{}: tasks.{}: duplicate task '{}'", path, line, name, name);
  if (first_line > 0 && first_line != line) {
    message += fmt::format(" (first defined on line {})", first_line);
  }
  return message;
}

}  // namespace

std::optional<std::string> ClosestName(std::string_view word,
                                       std::span<const std::string> candidates) {
  constexpr size_t kMaxEdits = 2;
  std::optional<std::string> best;
  size_t best_distance = kMaxEdits + 1;
  std::vector<size_t> previous, current;
  for (const std::string& candidate : candidates) {
    // Levenshtein distance over two rows.
    previous.resize(candidate.size() + 1);
    current.resize(candidate.size() + 1);
    for (size_t j = 0; j <= candidate.size(); ++j) previous[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      current[0] = i;
      for (size_t j = 1; j <= candidate.size(); ++j) {
        size_t substitute = previous[j - 1] + (word[i - 1] == candidate[j - 1] ? 0 : 1);
        current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
      }
      std::swap(previous, current);
    }
    size_t distance = previous[candidate.size()];
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

Status CheckGraph(const FlowSpec& spec) {
  auto fail = [&](int line, std::string what) {
    return InvalidArgumentError(fmt::format("{}:{}: {}", spec.path, line, what));
  };
  std::unordered_map<std::string_view, size_t> index;
  index.reserve(spec.tasks.size());
  for (size_t i = 0; i < spec.tasks.size(); ++i) {
    const TaskSpec& task = spec.tasks[i];
    if (task.name.empty()) return fail(task.line, "a task has an empty name");
    auto [it, inserted] = index.emplace(task.name, i);
    if (!inserted) {
      return fail(task.line, fmt::format("tasks.{}: duplicate task '{}' (first defined on line {})",
                                         task.name, task.name, spec.tasks[it->second].line));
    }
  }
  // Predecessor lists by index; one pass, reused by the cycle walk.
  std::vector<std::vector<size_t>> preds(spec.tasks.size());
  std::vector<size_t> in_degree(spec.tasks.size(), 0);
  std::vector<std::vector<size_t>> succs(spec.tasks.size());
  // listed_by[p] == i + 1 once task i has named p: duplicate checks in O(1).
  std::vector<size_t> listed_by(spec.tasks.size(), 0);
  for (size_t i = 0; i < spec.tasks.size(); ++i) {
    const TaskSpec& task = spec.tasks[i];
    if (task.pool && !spec.pools.contains(*task.pool)) {
      return fail(task.line, fmt::format("tasks.{}.pool: pool '{}' is not declared in [pools]",
                                         task.name, *task.pool));
    }
    for (const std::string& dep : task.after) {
      auto it = index.find(dep);
      if (it == index.end()) {
        return fail(task.line, fmt::format("tasks.{}.after: unknown task '{}'", task.name, dep));
      }
      if (listed_by[it->second] == i + 1) {
        return fail(task.line, fmt::format("tasks.{}.after: '{}' is listed twice", task.name, dep));
      }
      listed_by[it->second] = i + 1;
      preds[i].push_back(it->second);
      succs[it->second].push_back(i);
      ++in_degree[i];
    }
  }
  // Kahn's algorithm; what it cannot remove lies on a cycle or downstream of one.
  std::vector<size_t> queue;
  for (size_t i = 0; i < spec.tasks.size(); ++i) {
    if (in_degree[i] == 0) queue.push_back(i);
  }
  for (size_t head = 0; head < queue.size(); ++head) {
    for (size_t s : succs[queue[head]]) {
      if (--in_degree[s] == 0) queue.push_back(s);
    }
  }
  if (queue.size() == spec.tasks.size()) return OkStatus();
  // Every remaining task has a remaining predecessor, so walking predecessors from one
  // must come back to a task already seen: that loop is a cycle.
  size_t start = 0;
  while (in_degree[start] == 0) ++start;
  std::vector<int> position(spec.tasks.size(), -1);
  std::vector<size_t> walk;
  size_t current = start;
  while (position[current] < 0) {
    position[current] = static_cast<int>(walk.size());
    walk.push_back(current);
    for (size_t p : preds[current]) {
      if (in_degree[p] > 0) {
        current = p;
        break;
      }
    }
  }
  std::vector<size_t> cycle(walk.begin() + position[current], walk.end());
  // The walk went against the arrows; report in run order from the task written first.
  std::reverse(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  std::string chain;
  for (size_t i : cycle) chain += spec.tasks[i].name + " -> ";
  chain += spec.tasks[cycle.front()].name;
  return fail(spec.tasks[cycle.front()].line, "cycle: " + chain);
}

// toml++ 3.3.0 (Debian 12's) reaches undefined behaviour on a non-ASCII byte in a bare key
// (upstream #190/#295), and TOML 1.0 allows only ASCII there anyway. So non-ASCII bytes
// are allowed only where TOML allows them, inside strings and comments, and anything else
// is refused here, before toml++ sees it. Returns "" when the text is fine.
static std::string NonAsciiOutsideStrings(std::string_view text, std::string_view path) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = ++i;
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      bool multi = text.substr(i, 3) == std::string(3, c);
      std::string_view end = multi ? std::string_view(c == '"' ? "\"\"\"" : "\'\'\'")
                                   : std::string_view(c == '"' ? "\"" : "\'");
      i += end.size();
      while (i < text.size() && text.substr(i, end.size()) != end) {
        if (text[i] == '\n') {
          if (!multi) break;  // an unterminated string: toml++ reports it
          ++line;
          line_start = i + 1;
        }
        // A backslash escapes the next byte in basic strings only.
        i += (c == '"' && text[i] == '\\' && i + 1 < text.size()) ? 2 : 1;
      }
      if (i < text.size() && text[i] != '\n') i += end.size();
    } else if (static_cast<unsigned char>(c) >= 0x80) {
      return fmt::format(
          "{}:{}:{}: a non-ASCII character outside a quoted string (TOML's bare keys are "
          "ASCII letters, digits, '_' and '-': quote the key, e.g. [tasks.\"name\"])",
          path, line, i - line_start + 1);
    } else {
      ++i;
    }
  }
  return "";
}

Result<FlowSpec> ParseFlow(std::string_view text, std::string_view path_for_errors) {
  if (std::string bad = NonAsciiOutsideStrings(text, path_for_errors); !bad.empty()) {
    return InvalidArgumentError(std::move(bad));
  }
  toml::table root;
  try {
    root = toml::parse(text, path_for_errors);
  } catch (const toml::parse_error& e) {
    int line = LineOf(e.source());
    std::string duplicate = DuplicateTaskMessage(text, path_for_errors, line, e.description());
    if (!duplicate.empty()) return InvalidArgumentError(std::move(duplicate));
    return InvalidArgumentError(fmt::format("{}:{}:{}: TOML syntax error: {}", path_for_errors,
                                            line, e.source().begin.column, e.description()));
  }
  return Parser(path_for_errors).Parse(root);
}

Result<FlowSpec> LoadFlowFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return NotFoundError(fmt::format("{}: cannot read: is a directory", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return NotFoundError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return NotFoundError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  }
  return ParseFlow(text.str(), path);
}

}  // namespace forklift::flow
