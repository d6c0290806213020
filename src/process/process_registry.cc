#include "process/process_registry.h"

#include <signal.h>

#include <algorithm>

#include "process/orphan_watchdog.h"

namespace forklift::process {

void ProcessRegistry::Add(pid_t pgid) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_.push_back(pgid);
  if (watchdog_) watchdog_->Add(pgid);
  // Under the lock: a Shutdown racing with this Add either sees the group in groups_ or
  // has set shutdown_signal_ before we read it, never neither.
  if (shutdown_signal_ != 0) kill(-pgid, shutdown_signal_);
}

void ProcessRegistry::Remove(pid_t pgid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(groups_.begin(), groups_.end(), pgid);
  if (it == groups_.end()) return;
  *it = groups_.back();
  groups_.pop_back();
  if (watchdog_) watchdog_->Remove(pgid);
}

void ProcessRegistry::Watch(OrphanWatchdog* watchdog) {
  std::lock_guard<std::mutex> lock(mu_);
  watchdog_ = watchdog;
}

int ProcessRegistry::KillAll(int signal) {
  std::lock_guard<std::mutex> lock(mu_);
  int reached = 0;
  for (pid_t pgid : groups_) {
    if (kill(-pgid, signal) == 0) ++reached;
  }
  return reached;
}

int ProcessRegistry::Shutdown(int signal) {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_signal_ = signal;
  int reached = 0;
  for (pid_t pgid : groups_) {
    if (kill(-pgid, signal) == 0) ++reached;
  }
  return reached;
}

size_t ProcessRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return groups_.size();
}

int ProcessRegistry::shutdown_signal() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutdown_signal_;
}

}  // namespace forklift::process
