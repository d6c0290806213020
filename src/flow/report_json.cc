#include "flow/report_json.h"

namespace forklift::flow {

using json = nlohmann::json;

json ReportToJson(const ReportData& r, const std::vector<std::string>& hashes) {
  json tasks = json::array();
  for (size_t i = 0; i < r.tasks.size(); ++i) {
    const TaskReport& t = r.tasks[i];
    json attempts = json::array();
    for (const AttemptReport& a : t.attempts) {
      attempts.push_back({{"start_offset_s", a.start_offset_s},
                          {"duration_s", a.duration_s},
                          {"exit_code", a.exit_code},
                          {"signal", a.signal},
                          {"state", a.state}});
    }
    json task = {{"name", t.name},
                 {"state", t.state},
                 {"critical", t.critical},
                 {"slow", t.slow},
                 {"on_critical_path", t.on_critical_path},
                 {"attempts", attempts},
                 {"log_tail", t.log_tail},
                 {"group", t.group},
                 {"cmd_hash", i < hashes.size() ? hashes[i] : ""}};
    if (!t.sql_tags.empty()) task["sql"] = t.sql_tags;
    if (t.items_succeeded) {
      json slowest = json::array();
      for (const auto& [cmd, secs] : t.slowest_items) slowest.push_back({cmd, secs});
      task["items"] = {{"succeeded", *t.items_succeeded},
                       {"failed", t.items_failed.value_or(0)},
                       {"slowest", slowest}};
    }
    tasks.push_back(std::move(task));
  }
  json hooks = json::array();
  for (const HookReport& h : r.hooks) {
    hooks.push_back({{"hook", h.hook},
                     {"task", h.task},
                     {"outcome", h.outcome},
                     {"ok", h.ok},
                     {"duration_s", h.duration_s}});
  }
  return {{"flow_name", r.flow_name},
          {"run_id", r.run_id},
          {"status", r.status},
          {"started_unix_s", r.started_unix_s},
          {"wall_s", r.wall_s},
          {"tasks", tasks},
          {"hooks", hooks}};
}

namespace {

ReportData FromJson(const json& j) {
  ReportData r;
  r.flow_name = j.value("flow_name", "");
  r.run_id = j.value("run_id", "");
  r.status = j.value("status", "");
  r.started_unix_s = j.value("started_unix_s", int64_t{0});
  r.wall_s = j.value("wall_s", 0.0);
  for (const json& t : j.value("tasks", json::array())) {
    TaskReport tr;
    tr.name = t.value("name", "");
    tr.state = t.value("state", "");
    tr.critical = t.value("critical", true);
    tr.slow = t.value("slow", false);
    tr.on_critical_path = t.value("on_critical_path", false);
    tr.log_tail = t.value("log_tail", "");
    tr.group = t.value("group", "");
    for (const json& tag : t.value("sql", json::array())) {
      if (tag.is_string()) tr.sql_tags.push_back(tag.get<std::string>());
    }
    if (t.contains("items") && t["items"].is_object()) {
      const json& items = t["items"];
      tr.items_succeeded = items.value("succeeded", uint64_t{0});
      tr.items_failed = items.value("failed", uint64_t{0});
      for (const json& s : items.value("slowest", json::array())) {
        if (s.is_array() && s.size() == 2 && s[0].is_string() && s[1].is_number()) {
          tr.slowest_items.emplace_back(s[0].get<std::string>(), s[1].get<double>());
        }
      }
    }
    for (const json& a : t.value("attempts", json::array())) {
      tr.attempts.push_back({a.value("start_offset_s", 0.0), a.value("duration_s", 0.0),
                             a.value("exit_code", 0), a.value("signal", 0), a.value("state", "")});
    }
    r.tasks.push_back(std::move(tr));
  }
  for (const json& h : j.value("hooks", json::array())) {
    r.hooks.push_back({h.value("hook", ""), h.value("task", ""), h.value("outcome", ""),
                       h.value("ok", false), h.value("duration_s", 0.0)});
  }
  return r;
}

}  // namespace

Result<ReportData> ReportFromJson(const json& j) {
  try {
    return FromJson(j);
  } catch (const json::exception& e) {
    return DataLossError(std::string("the run's summary is not a report: ") + e.what());
  }
}

}  // namespace forklift::flow
