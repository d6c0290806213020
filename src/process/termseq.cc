#include "process/termseq.h"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <iterator>

namespace forklift::process {
namespace {

struct NamedSignal {
  const char* name;
  int number;
};

// The names kill(1) and Perl's %SIG (which GNU parallel's --termseq goes through) know.
constexpr NamedSignal kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"IOT", SIGIOT},   {"BUS", SIGBUS},
    {"FPE", SIGFPE},   {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

std::optional<int> LookUpSignal(std::string_view text) {
  if (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front()))) {
    int number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    if (number < 1 || number >= NSIG) return std::nullopt;
    return number;
  }
  if (text.size() > 3 && EqualsIgnoreCase(text.substr(0, 3), "SIG")) text.remove_prefix(3);
  for (const NamedSignal& s : kSignals) {
    if (EqualsIgnoreCase(text, s.name)) return s.number;
  }
  return std::nullopt;
}

}  // namespace

TermSeq TermSeq::Default() {
  using std::chrono::milliseconds;
  return TermSeq{{{SIGTERM, milliseconds(200)},
                  {SIGTERM, milliseconds(100)},
                  {SIGTERM, milliseconds(50)},
                  {SIGKILL, milliseconds(25)}}};
}

Result<TermSeq> TermSeq::Parse(std::string_view text) {
  std::vector<std::string_view> tokens;
  for (size_t begin = 0;;) {
    size_t comma = text.find(',', begin);
    tokens.push_back(text.substr(begin, comma == std::string_view::npos ? comma : comma - begin));
    if (comma == std::string_view::npos) break;
    begin = comma + 1;
  }
  auto bad = [&](size_t i, std::string_view what) {
    return InvalidArgumentError("termseq: " + std::string(what) + " '" + std::string(tokens[i]) +
                                "' (token " + std::to_string(i + 1) + " of \"" + std::string(text) +
                                "\")");
  };
  if (text.empty()) return InvalidArgumentError("termseq: empty sequence");

  TermSeq seq;
  for (size_t i = 0; i < tokens.size(); i += 2) {
    std::optional<int> signal = LookUpSignal(tokens[i]);
    if (!signal) return bad(i, "unknown signal");
    Step step{*signal, Duration{0}};
    if (i + 1 < tokens.size()) {
      std::string_view ms_text = tokens[i + 1];
      int64_t ms = 0;
      auto [end, ec] = std::from_chars(ms_text.data(), ms_text.data() + ms_text.size(), ms);
      // A week bounds it far below Duration's range; no sane sequence waits that long.
      constexpr int64_t kMaxWaitMs = int64_t{7} * 24 * 3600 * 1000;
      if (ms_text.empty() || ec != std::errc() || end != ms_text.data() + ms_text.size() ||
          ms < 0 || ms > kMaxWaitMs) {
        return bad(i + 1, "bad wait in milliseconds");
      }
      step.wait = std::chrono::milliseconds(ms);
    }
    seq.steps.push_back(step);
  }
  return seq;
}

std::string TermSeq::ToString() const {
  std::string out;
  for (const Step& step : steps) {
    if (!out.empty()) out += ',';
    out += SignalName(step.signal);
    out += ',';
    out += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(step.wait).count());
  }
  return out;
}

Result<int> ParseSignal(std::string_view text) {
  std::optional<int> signal = LookUpSignal(text);
  if (!signal) return InvalidArgumentError("unknown signal '" + std::string(text) + "'");
  return *signal;
}

std::string SignalName(int signal) {
  for (const NamedSignal& s : kSignals) {
    // SIGIOT aliases SIGABRT; the loop meets ABRT first.
    if (s.number == signal) return s.name;
  }
  return std::to_string(signal);
}

}  // namespace forklift::process
