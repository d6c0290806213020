// A task attempt's log file, and the local timestamps every flow log line carries.
#ifndef FORKLIFT_FLOW_TASK_LOG_H_
#define FORKLIFT_FLOW_TASK_LOG_H_

#include <deque>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "process/subprocess.h"

namespace forklift::flow {

// The local time now in strftime's `format` (at most 63 bytes).
std::string LocalStamp(const char* format);

// The local time now with milliseconds, as log lines begin: "2026-11-23T09:10:01.123".
std::string LogStamp();

// Lines of a task's output, each stamped and tagged with its stream, appended to its log.
// The file is created at the first byte of output (or for a failure): a silent task that
// succeeds leaves its two notes in main.log only, and costs no file (creating thousands of
// files was the largest cost of a run of tiny tasks). One per attempt; used only on the
// thread running that attempt.
class TaskLog {
 public:
  explicit TaskLog(std::filesystem::path path) : path_(std::move(path)) {}
  void Note(std::string_view text) {
    std::string line = LogStamp() + " [forklift] ";
    line.append(text);
    line += '\n';
    Write(line);
  }
  void Chunk(process::Stream s, std::string_view bytes) {
    Open();
    std::string& partial = partial_[s == process::Stream::kStdout ? 0 : 1];
    const char* tag = s == process::Stream::kStdout ? "out" : "err";
    partial.append(bytes);
    size_t start = 0, nl;
    while ((nl = partial.find('\n', start)) != std::string::npos) {
      out_ << LogStamp() << " [" << tag << "] ";
      out_.write(partial.data() + start, static_cast<std::streamsize>(nl - start + 1));
      if (s == process::Stream::kStderr) KeepStderrLine(partial.substr(start, nl - start));
      start = nl + 1;
    }
    partial.erase(0, start);
  }
  // The attempt's last `n` lines of stderr (an unterminated last line included), joined
  // by "\n    | " for an event line; at most 200 bytes a line.
  std::string StderrTail(size_t n) {
    std::deque<std::string> lines = err_tail_;
    if (!partial_[1].empty()) lines.push_back(partial_[1].substr(0, 200));
    while (lines.size() > n) lines.pop_front();
    std::string out;
    for (const std::string& l : lines) {
      if (!out.empty()) out += "\n    | ";
      out += l;
    }
    return out;
  }
  // Ends the attempt's output (an unterminated last line gets its newline).
  void EndOutput() {
    for (int i = 0; i < 2; ++i) {
      if (!partial_[i].empty()) {
        out_ << LogStamp() << (i == 0 ? " [out] " : " [err] ") << partial_[i] << '\n';
        partial_[i].clear();
      }
    }
  }
  // Closes the attempt. With `keep` (a failure) the file is created even if the task was
  // silent. Returns what was never written to a file (for main.log).
  std::string Close(bool keep) {
    if (keep) Open();
    out_.flush();
    return std::move(held_);
  }

 private:
  void Open() {
    if (opened_) return;
    opened_ = true;
    out_.open(path_, std::ios::app | std::ios::binary);
    out_ << held_;
    held_.clear();
  }
  void KeepStderrLine(std::string line) {
    if (line.size() > 200) line.resize(200);
    err_tail_.push_back(std::move(line));
    if (err_tail_.size() > 8) err_tail_.pop_front();
  }
  void Write(std::string_view text) {
    if (opened_) {
      out_ << text;
    } else {
      held_.append(text);
    }
  }

  std::filesystem::path path_;
  bool opened_ = false;
  std::ofstream out_;
  std::string held_;  // notes written before the file exists
  std::string partial_[2];
  std::deque<std::string> err_tail_;  // the last stderr lines
};

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_TASK_LOG_H_
