#include "flow/fanout.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

namespace forklift::flow {

std::string ShellWord(std::string_view text) {
  bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_-./:=@%+,", c);
  });
  if (safe) return std::string(text);
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::vector<std::string> FanoutArgv(const TaskSpec& t, const FanoutCall& call) {
  int jobs = t.jobs > 0 ? std::min(t.jobs, call.flow_jobs) : call.flow_jobs;
  std::vector<std::string> map = {call.forklift_exe, "map",        "-j",       std::to_string(jobs),
                                  "--journal",       call.journal, "--run-id", call.run_id,
                                  "--joblog",        call.joblog};
  if (t.timeout) {
    map.push_back("--timeout");
    map.push_back(fmt::format(
        "{}ms", std::chrono::duration_cast<std::chrono::milliseconds>(*t.timeout).count()));
  }
  if (t.retries > 0) {
    map.push_back("--retries");  // GNU parallel's count: attempts in all
    map.push_back(std::to_string(t.retries + 1));
  }
  if (call.resume) map.push_back("--resume-failed");
  map.push_back(t.cmd);
  if (!t.foreach.empty()) {
    map.push_back("::::");
    map.push_back(t.foreach);
    return map;
  }
  std::string line = t.foreach_cmd + " | exec";
  for (const std::string& a : map) line += " " + ShellWord(a);
  return {"/bin/sh", "-c", line};
}

// The `n` slowest jobs of a GNU parallel joblog (its last row per job), slowest first.
std::vector<std::pair<std::string, double>> SlowestJobs(const std::filesystem::path& joblog,
                                                        size_t n) {
  std::ifstream in(joblog);
  std::map<std::string, std::pair<std::string, double>> by_seq;
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    for (int i = 0; i < 8; ++i) {
      size_t tab = line.find('\t', start);
      if (tab == std::string::npos) break;
      f.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    if (f.size() < 8) continue;
    by_seq[f[0]] = {line.substr(start), std::strtod(f[3].c_str(), nullptr)};
  }
  std::vector<std::pair<std::string, double>> all;
  for (auto& [seq, job] : by_seq) all.push_back(std::move(job));
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (all.size() > n) all.resize(n);
  return all;
}

}  // namespace forklift::flow
