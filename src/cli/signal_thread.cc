#include "cli/signal_thread.h"

#include <fmt/format.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <atomic>
#include <thread>

namespace forklift::cli {
namespace {
// sigwait() also takes this one, sent by the destructor to end the thread.
constexpr int kWakeSignal = SIGUSR2;

sigset_t HandledSignals(bool hangup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (hangup) sigaddset(&set, SIGHUP);
  sigaddset(&set, kWakeSignal);
  return set;
}
}  // namespace

struct SignalThread::State {
  std::function<void(int)> on_first;
  std::function<void(int)> on_second;
  std::atomic<int> first{0};
  std::atomic<bool> stopping{false};
  std::thread thread;
};

void SignalThread::BlockSignals(bool hangup) {
  sigset_t set = HandledSignals(hangup);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalThread::SignalThread(std::function<void(int)> on_first, std::function<void(int)> on_second,
                           bool hangup)
    : state_(new State{std::move(on_first), std::move(on_second), {}, {}, {}}) {
  BlockSignals(hangup);
  State* st = state_;
  st->thread = std::thread([st, hangup] {
    sigset_t set = HandledSignals(hangup);
    int count = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (st->stopping.load()) return;
      if (sig == kWakeSignal) continue;
      ++count;
      if (count == 1) {
        st->first.store(sig);
        if (st->on_first) st->on_first(sig);
      } else if (count == 2) {
        if (st->on_second) st->on_second(sig);
      }
    }
  });
}

SignalThread::~SignalThread() {
  state_->stopping.store(true);
  pthread_kill(state_->thread.native_handle(), kWakeSignal);
  state_->thread.join();
  delete state_;
}

int SignalThread::first_signal() const { return state_->first.load(); }

StopSignals::StopSignals(std::string prefix, std::string what_first)
    : thread_(
          [this, prefix = std::move(prefix), what = std::move(what_first)](int sig) {
            fmt::print(stderr, "{}: {}: {}\n", prefix, sigabbrev_np(sig), what);
            graceful_.request_stop();
          },
          [this](int) { force_.request_stop(); }) {}

}  // namespace forklift::cli
