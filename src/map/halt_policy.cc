#include "map/halt_policy.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace forklift::map {
namespace {

bool ParseUnsigned(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

Result<HaltPolicy> ParseHaltPolicy(std::string_view text) {
  auto bad = [&](const char* why) {
    return InvalidArgumentError("forklift map: bad --halt '" + std::string(text) + "': " + why);
  };
  std::string spec(text);
  if (spec == "0")
    spec = "never";
  else if (spec == "1")
    spec = "soon,fail=1";
  else if (spec == "2")
    spec = "now,fail=1";
  else if (spec == "-1")
    spec = "soon,success=1";
  else if (spec == "-2")
    spec = "now,success=1";
  else if (spec.size() > 1 && spec.back() == '%') {
    uint64_t n;
    if (ParseUnsigned(std::string_view(spec).substr(0, spec.size() - 1), &n)) {
      spec = "soon,fail=" + spec;
    }
  }

  // GNU parallel: split /[,=]/.
  std::vector<std::string_view> parts;
  std::string_view rest = spec;
  while (true) {
    size_t cut = rest.find_first_of(",=");
    parts.push_back(rest.substr(0, cut));
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 1);
  }

  HaltPolicy policy;
  if (parts[0] == "never") {
    policy.when = HaltWhen::kNever;
    return policy;  // GNU parallel ignores whatever follows "never"
  }
  if (parts[0] == "soon") {
    policy.when = HaltWhen::kSoon;
  } else if (parts[0] == "now") {
    policy.when = HaltWhen::kNow;
  } else {
    return bad("must start with never, soon or now");
  }
  if (parts.size() < 2 || parts[1].empty()) return bad("expected fail=, success= or done=");
  if (parts[1] == "fail") {
    policy.on = HaltOn::kFail;
  } else if (parts[1] == "success") {
    policy.on = HaltOn::kSuccess;
  } else if (parts[1] == "done") {
    policy.on = HaltOn::kDone;
  } else {
    return bad("expected fail=, success= or done=");
  }
  if (parts.size() < 3) return bad("expected a number or a percentage after '='");
  // GNU parallel ignores anything after the value; a typo there deserves an error.
  if (parts.size() > 3) return bad("unexpected text after the value");
  std::string_view value = parts[2];
  if (!value.empty() && value.back() == '%') {
    policy.percent = true;
    value.remove_suffix(1);
  }
  if (!ParseUnsigned(value, &policy.value)) {
    return bad("expected a number or a percentage after '='");
  }
  return policy;
}

HaltDecision HaltTracker::OnJobDone(int exit_value, int signal, uint64_t total_jobs) {
  ++completed_;
  const bool job_failed = exit_value != 0 || signal != 0;
  if (job_failed) ++failed_;
  // GNU parallel's should_we_halt: the count that the policy watches, if this job is
  // one of the kind it watches.
  std::optional<uint64_t> count;
  if (job_failed && policy_.on == HaltOn::kFail) count = failed_;
  if (!job_failed && policy_.on == HaltOn::kSuccess) count = completed_ - failed_;
  if (policy_.on == HaltOn::kDone) count = completed_;
  if (policy_.when == HaltWhen::kNever || !count) return HaltDecision::kContinue;

  if (policy_.percent) {
    if (total_jobs_ == 0) {
      if (total_jobs == 0) return HaltDecision::kContinue;  // the total is not known yet
      total_jobs_ = total_jobs;
      threshold_ = static_cast<double>(total_jobs_) * static_cast<double>(policy_.value) / 100;
    }
  } else {
    threshold_ = static_cast<double>(policy_.value);
  }
  if (static_cast<double>(*count) < threshold_) return HaltDecision::kContinue;

  if (policy_.on == HaltOn::kSuccess) {
    halt_exit_status_ = 0;
  } else if (!halt_exit_status_) {
    int status = 0;
    if (policy_.percent) {
      status = static_cast<int>(
          std::ceil(static_cast<double>(failed_) / static_cast<double>(total_jobs_) * 100));
    } else if (policy_.value > 0) {
      status = static_cast<int>(std::min<uint64_t>(failed_, 101));
    }
    if (threshold_ == 1) {
      // As bash reports it: the job's own status, or 128 + the signal that ended it.
      status = exit_value != 0 ? exit_value : (signal != 0 ? signal + 128 : 0);
    }
    halt_exit_status_ = status;
  }
  return policy_.when == HaltWhen::kSoon ? HaltDecision::kSoon : HaltDecision::kNow;
}

int HaltTracker::ExitStatus(uint64_t total_started) const {
  int status;
  if (halt_exit_status_) {
    status = *halt_exit_status_;
  } else if (policy_.when != HaltWhen::kNever && policy_.percent) {
    status = static_cast<int>(std::ceil(static_cast<double>(failed_) /
                                        static_cast<double>(std::max<uint64_t>(total_started, 1)) *
                                        100));
  } else if (policy_.when != HaltWhen::kNever && policy_.value == 0) {
    status = 0;  // GNU parallel leaves it undefined, and exit(undef) is 0
  } else {
    status = static_cast<int>(std::min<uint64_t>(failed_, 101));
  }
  return status & 0xff;  // what exit(2) makes of GNU parallel's -1 for a timeout
}

}  // namespace forklift::map
