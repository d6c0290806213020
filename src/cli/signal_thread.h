// DESIGN.md's signal semantics for the CLI: the first SIGINT/SIGTERM asks for a graceful
// stop (start nothing new, let running work finish, record, exit non-zero); the second
// forces one (kill running process groups, exit). `forklift map` also takes SIGHUP that
// way, as GNU parallel does (a closed terminal stops new jobs, running ones finish).
//
// The signals are blocked in every thread (BlockSignals(), or constructing the SignalThread,
// must happen in main before any other thread starts: threads inherit the mask) and taken
// synchronously by one thread with sigwait(), so the callbacks are ordinary code, not signal
// handlers. Thread safety: one SignalThread per process, constructed and destroyed in main.
#ifndef FORKLIFT_CLI_SIGNAL_THREAD_H_
#define FORKLIFT_CLI_SIGNAL_THREAD_H_

#include <functional>
#include <stop_token>
#include <string>

namespace forklift::cli {

class SignalThread {
 public:
  // Blocks SIGINT and SIGTERM (and SIGHUP when `hangup`) in the calling thread, and so in
  // the threads it creates later.
  static void BlockSignals(bool hangup = false);

  // Blocks the signals (as BlockSignals) in the calling thread and starts the thread:
  // on_first runs on the first signal, on_second on the second; later signals are
  // ignored. Both run on the signal thread. With `hangup`, SIGHUP counts like SIGINT.
  // Threads the caller started before this one still take the signals themselves.
  SignalThread(std::function<void(int)> on_first, std::function<void(int)> on_second,
               bool hangup = false);
  // Stops and joins the thread.
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

  // The first signal received, or 0.
  int first_signal() const;

 private:
  struct State;
  State* state_;
};

// The two stops of a command that runs work (load, run): the first SIGINT/SIGTERM prints
// "PREFIX: SIGINT: WHAT_FIRST" on stderr and requests graceful(); the second requests
// force(). Construct it in main before other threads start (as SignalThread). Thread
// safety: the tokens may be read from any thread.
class StopSignals {
 public:
  StopSignals(std::string prefix, std::string what_first);

  std::stop_token graceful() const { return graceful_.get_token(); }
  std::stop_token force() const { return force_.get_token(); }
  // The first signal received, or 0.
  int first_signal() const { return thread_.first_signal(); }

 private:
  std::stop_source graceful_, force_;
  SignalThread thread_;  // last: its callbacks use the sources
};

}  // namespace forklift::cli

#endif  // FORKLIFT_CLI_SIGNAL_THREAD_H_
