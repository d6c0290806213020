// forklift map's run loop. Jobs are run_batch items: the engine gives the window, the
// retries with backoff, ordered delivery for -k and the journal; this file turns inputs
// into jobs, a job into a subprocess, and an outcome into output, a joblog row and a halt
// decision.
#include "map/map_runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/fnv1a.h"
#include "core/latency_histogram.h"
#include "core/progress_renderer.h"
#include "forklift/batch.h"
#include "forklift/executor.h"
#include "journal/journal.h"
#include "map/command_template.h"
#include "map/halt_policy.h"
#include "map/input_source.h"
#include "map/joblog.h"
#include "map/map_output.h"
#include "map/shell_quote.h"
#include "process/subprocess.h"
#include "queue/queue_coordinator.h"
#include "sinks/pg_dsn.h"

namespace forklift::map {
namespace {

using process::Completion;

struct MapJob {
  uint64_t index = 0;             // position among the jobs handed to run_batch
  uint64_t seq = 0;               // {#}: position in the input, skipped jobs included
  std::vector<std::string> args;  // the input columns
  std::string fixed_command;      // --retry-failed: the command from the joblog
  std::string key;                // journal key: hash of the command template and args
  const std::string& CheckpointKey() const { return key; }
};

// What a job's last attempt left, in its outcome whether it succeeded or failed.
struct JobResult {
  uint64_t seq = 0;
  std::vector<std::string> args;  // for --results
  std::string command;
  // The process's end; nullopt when none ran (out of processes or descriptors).
  std::optional<Completion> completion;
  std::optional<JobOutput> output;
  // Writing its output failed while it ran (it was stopped then); ends the run.
  std::optional<Error> output_error;
  // Whether the worker already applied --halt to it (a final attempt); a stop that came
  // between the attempt and the engine's retry decision leaves it to the outcome.
  bool counted_for_halt = false;
};

// What map retries (--retries): a job that failed on its own (an exit status, a signal,
// a timeout) and a spawn that found no resources; not one forklift stopped, nor one
// whose output could not be written.
bool IsRetryableJobError(const Error& e) {
  return e.code == ErrorCode::kAborted || e.code == ErrorCode::kDeadlineExceeded ||
         e.code == ErrorCode::kUnavailable;
}

// The jobs of a run as an input range for run_batch: input tuples (or --retry-failed's
// stored commands), numbered, keyed, and filtered when resuming: by the journal (what it
// recorded as finished) or, from a joblog alone, by the joblog's seqs. Filtering here
// rather than in the engine keeps the jobs handed to run_batch numbered without gaps,
// which --delay's in-order start gate relies on.
//
// A job's key is a hash of the template and its arguments plus, from an input's second
// occurrence on, the occurrence number: an input that appears twice is two jobs, and
// reordering the input keeps each job's key. Memory: one entry per distinct input.
class JobRange {
 public:
  struct Iterator {
    using value_type = MapJob;
    using difference_type = std::ptrdiff_t;
    JobRange* range = nullptr;
    const MapJob& operator*() const { return range->current_; }
    Iterator& operator++() {
      range->Advance();
      return *this;
    }
    void operator++(int) { range->Advance(); }
    bool operator==(std::default_sentinel_t) const { return range->done_; }
  };

  // Whether the journal recorded this job as one a resume skips.
  using SkipRecorded = std::function<Result<bool>(const MapJob& job)>;

  JobRange(InputSource* input, std::vector<std::pair<uint64_t, std::string>> fixed,
           const JoblogHistory* skip_by_seq, bool skip_failed_too, std::string template_text,
           SkipRecorded skip_recorded)
      : input_(input),
        fixed_(std::move(fixed)),
        skip_by_seq_(skip_by_seq),
        skip_failed_too_(skip_failed_too),
        template_hash_(core::Fnv1a().Add(template_text)),
        skip_recorded_(std::move(skip_recorded)) {}

  Iterator begin() {
    Advance();
    return Iterator{this};
  }
  std::default_sentinel_t end() { return {}; }
  const std::optional<Error>& error() const { return error_; }
  // All jobs of the run, skipped ones included, once the input is exhausted; 0 before
  // (a --halt N% policy needs it, and GNU parallel, too, knows it only after reading all).
  // Thread-safe (the workers' halt checks read it).
  uint64_t total() const { return total_.load(std::memory_order_acquire); }
  // Jobs skipped so far because a resume found them done. Thread-safe.
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }

 private:
  void Advance() {
    for (;;) {
      MapJob job;
      if (input_) {
        auto next = input_->Next();
        if (!next) {
          error_ = next.error();
          return Done();
        }
        if (!*next) return Done();
        job.seq = ++seq_;
        job.args = std::move(**next);
        core::Fnv1a h = template_hash_;
        for (const auto& a : job.args) h.Add(a);
        job.key = Occurrence(h);
      } else {
        if (fixed_pos_ == fixed_.size()) return Done();
        auto& [seq, cmd] = fixed_[fixed_pos_++];
        job.seq = seq;
        job.fixed_command = std::move(cmd);
        job.key = Occurrence(core::Fnv1a().Add(job.fixed_command));
      }
      if (skip_by_seq_ &&
          (skip_failed_too_ ? skip_by_seq_->Ran(job.seq) : skip_by_seq_->Succeeded(job.seq))) {
        skipped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (skip_recorded_) {
        auto skip = skip_recorded_(job);
        if (!skip) {
          error_ = skip.error();
          return Done();
        }
        if (*skip) {
          skipped_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
      }
      job.index = produced_++;
      current_ = std::move(job);
      return;
    }
  }

  void Done() {
    done_ = true;
    total_.store(input_ ? seq_ : fixed_.size(), std::memory_order_release);
  }
  // The key of the job whose content hashes to `h`: the hash, then "#N" from its Nth
  // occurrence on (the first keeps the bare hash that journals before this rule hold).
  std::string Occurrence(const core::Fnv1a& h) {
    uint32_t n = ++occurrences_[h.value()];
    return n == 1 ? h.Hex() : fmt::format("{}#{}", h.Hex(), n);
  }

  InputSource* input_;
  std::vector<std::pair<uint64_t, std::string>> fixed_;
  size_t fixed_pos_ = 0;
  const JoblogHistory* skip_by_seq_;
  bool skip_failed_too_;
  core::Fnv1a template_hash_;  // extended by each job's arguments
  SkipRecorded skip_recorded_;
  std::unordered_map<uint64_t, uint32_t> occurrences_;  // by content hash
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> skipped_{0};
  uint64_t seq_ = 0;
  uint64_t produced_ = 0;
  MapJob current_;
  bool done_ = false;
  std::optional<Error> error_;
};

// Median runtime of the successful jobs so far, for --timeout N%.
class RuntimeMedian {
 public:
  void Add(Duration d) {
    std::lock_guard lock(mu_);
    hist_.Record(d);
  }
  std::optional<Duration> Median() const {
    std::lock_guard lock(mu_);
    if (hist_.count() == 0) return std::nullopt;
    return hist_.Percentile(0.5);
  }

 private:
  mutable std::mutex mu_;
  core::LatencyHistogram hist_;
};

// --delay: job starts at least `delay` apart, and first attempts in job order: job i
// reserves its start only after job i - 1 did, so two workers that take jobs 0 and 1 at
// once cannot swap them (GNU parallel starts them in order). Retries take the next free
// time. Thread-safe.
class StartGate {
 public:
  explicit StartGate(Duration delay) : delay_(delay) {}
  // The time job `index` (run_batch's, without gaps) may start, or nullopt once `stop`
  // was requested while it waited for its predecessor.
  std::optional<TimePoint> ReserveInOrder(uint64_t index, TimePoint now,
                                          const std::stop_token& stop) {
    std::unique_lock lock(mu_);
    if (!turn_.wait(lock, stop, [&] { return next_index_ == index; })) return std::nullopt;
    ++next_index_;
    TimePoint t = Take(now);
    lock.unlock();
    turn_.notify_all();
    return t;
  }
  TimePoint Reserve(TimePoint now) {
    std::lock_guard lock(mu_);
    return Take(now);
  }

 private:
  TimePoint Take(TimePoint now) {
    TimePoint t = std::max(now, next_);
    next_ = t + delay_;
    return t;
  }

  Duration delay_;
  std::mutex mu_;
  std::condition_variable_any turn_;
  uint64_t next_index_ = 0;
  TimePoint next_{};
};

// --results DIR: DIR/1/ARG1/2/ARG2/{seq,stdout,stderr}, with '\' and '/' in arguments
// escaped as GNU parallel does ("\\" and "\_").
Status WriteResults(const std::string& root, const std::vector<std::string>& args, uint64_t seq,
                    const Completion& c) {
  std::error_code mk;
  std::filesystem::create_directories(root, mk);
  long name_max = ::pathconf(root.c_str(), _PC_NAME_MAX);
  const size_t max_name = name_max > 0 ? static_cast<size_t>(name_max) : 255;
  std::string dir = root;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg;
    for (char ch : args[i]) {
      if (ch == '\\') {
        arg += "\\\\";
      } else if (ch == '/') {
        arg += "\\_";
      } else {
        arg += ch;
      }
    }
    // GNU parallel cuts each name to the longest the file system takes (255 bytes on
    // ext4), so a long argument still gets its directory; two arguments that agree in
    // their first 255 bytes share it, as in GNU parallel.
    if (arg.size() > max_name) arg.resize(max_name);
    dir += fmt::format("/{}/{}", i + 1, arg);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return InternalError(
        fmt::format("forklift map: --results: cannot create '{}': {}", dir, ec.message()));
  auto write_file = [&](const char* name, auto&& fill) -> Status {
    std::string path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      return InternalError(fmt::format("forklift map: --results: cannot write '{}'", path));
    Status s = fill(fd);
    ::close(fd);
    return s;
  };
  FORKLIFT_RETURN_IF_ERROR(write_file("seq", [&](int fd) -> Status {
    std::string text = std::to_string(seq);
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return InternalError("forklift map: --results: short write");
    }
    return OkStatus();
  }));
  FORKLIFT_RETURN_IF_ERROR(
      write_file("stdout", [&](int fd) { return c.stdout_output.WriteTo(fd); }));
  return write_file("stderr", [&](int fd) { return c.stderr_output.WriteTo(fd); });
}

// GNU parallel runs no more jobs at once than its file descriptors allow ("Only enough
// file handles to run N jobs in parallel"): a job holds up to kFdsPerJob descriptors
// (two output pipes, both ends while it spawns, a pidfd, an eventfd, two spill files),
// and forklift keeps kFdsReserved for itself (journal, joblog, stdio). Returns `jobs`,
// or fewer with a warning on stderr.
int CapJobsByDescriptors(int jobs) {
  constexpr int kFdsPerJob = 8;
  constexpr int kFdsReserved = 16;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return jobs;
  int open_now = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++open_now;
  }
  const long long room = static_cast<long long>(rl.rlim_cur) - open_now - kFdsReserved;
  const int fit = static_cast<int>(std::max<long long>(1, room / kFdsPerJob));
  if (fit >= jobs) return jobs;
  fmt::print(stderr,
             "forklift map: only enough file descriptors to run {} jobs at once (ulimit -n "
             "is {}); running {} instead of {}\n",
             fit, static_cast<unsigned long long>(rl.rlim_cur), fit, jobs);
  return fit;
}

class MapRun {
 public:
  MapRun(const MapOptions& o, const MapStops& stops, process::ProcessRegistry& registry,
         const MapIo& io)
      : o_(o),
        stops_(stops),
        registry_(registry),
        io_(io),
        clock_(io.clock ? *io.clock : SystemClock()),
        writer_(io.stdout_fd, io.stderr_fd) {
    if (!io_.run_command) {
      io_.run_command = [](const process::SpawnOptions& spawn, const std::stop_token& stop) {
        return process::Run(spawn, stop);
      };
    }
  }

  int Run();

 private:
  Status Prepare();
  int DryRun();
  ItemResult<JobResult> RunJob(const MapJob& job, ItemContext& ctx);
  // Output, the joblog row and messages for a job that ended for good; an error (output
  // or joblog not writable) stops the run.
  Status OnOutcome(Outcome<JobResult>&& outcome);
  // The joblog row of a job the journal has as succeeded but the joblog lacks (by seq: the
  // input in its earlier order), written when a resume skips the job.
  Status RestoreJoblogRow(const MapJob& job);
  int MaxAttempts() const {
    return static_cast<int>(std::min<uint64_t>(o_.MaxAttempts(), INT32_MAX));
  }
  // A job finished for good: applies --halt on the worker that ran it, before that worker
  // takes its next job (so -j1 --halt now,fail=1 never starts another), and says so.
  void CountForHalt(int exit_value, int signal, const std::string& command, uint64_t seq);
  void Fail(const Error& e) {
    std::string line = e.message + "\n";
    (void)!::write(io_.stderr_fd, line.data(), line.size());
  }

  const MapOptions& o_;
  MapStops stops_;
  process::ProcessRegistry& registry_;
  MapIo io_;
  Clock& clock_;
  OutputWriter writer_;
  std::optional<CommandTemplate> command_;
  std::optional<CommandTemplate> tag_;
  std::unique_ptr<InputSource> input_;
  std::optional<JoblogHistory> history_;
  std::unique_ptr<JoblogWriter> joblog_;
  process::TermSeq termseq_ = process::TermSeq::Default();
  std::string run_id_;
  int job_slots_ = 1;
  std::string journal_path_;
  bool journal_has_run_ = false;
  std::string template_text_;
  OutputGrouping grouping_ = OutputGrouping::kGroup;
  RuntimeMedian median_;
  std::optional<StartGate> gate_;
  std::mutex halt_mu_;  // guards halt_: workers count their jobs
  HaltTracker halt_{HaltPolicy{}};
  bool halt_said_ = false;
  std::unique_ptr<journal::Journal> journal_;  // the feeding thread's, for resume skips
  std::stop_source halt_soon_;
  std::stop_source halt_now_;
  uint64_t started_ = 0;
  // For the progress display (its thread reads them): jobs that ended, and how many failed.
  std::atomic<uint64_t> ended_{0};
  std::atomic<uint64_t> ended_failed_{0};
  const JobRange* jobs_ = nullptr;  // the run's jobs, while run_batch runs
  // --queue: jobs run on workers; this run coordinates (docs/queue.md).
  std::unique_ptr<queue::QueueCoordinator> queue_;
  bool fresh_joblog_ = false;  // --resume found no joblog (or an empty one): a new run
};

Status MapRun::Prepare() {
  FORKLIFT_ASSIGN_OR_RETURN(command_, CommandTemplate::ForCommand(o_.command, o_.quote));
  for (const auto& w : o_.command) template_text_ += w + ' ';
  template_text_ += o_.quote ? "q" : "";
  if (o_.tagstring) {
    FORKLIFT_ASSIGN_OR_RETURN(tag_, CommandTemplate::ForText(*o_.tagstring));
  } else if (o_.tag) {
    FORKLIFT_ASSIGN_OR_RETURN(tag_, CommandTemplate::ForText("{}"));
  }
  FORKLIFT_ASSIGN_OR_RETURN(termseq_, process::TermSeq::Parse(o_.termseq));
  FORKLIFT_ASSIGN_OR_RETURN(
      job_slots_, ResolveJobs(o_.jobs, static_cast<int>(BatchOptions::DefaultWorkerCount())));
  // With --queue the jobs' descriptors are the workers', not ours.
  if (!o_.dry_run && !o_.shell_quote && !o_.queue) job_slots_ = CapJobsByDescriptors(job_slots_);
  // --results captures each job's streams into files; nothing is printed.
  if (o_.results) tag_.reset();
  grouping_ = o_.results       ? OutputGrouping::kGroup
              : o_.ungroup     ? OutputGrouping::kUngroup
              : o_.line_buffer ? OutputGrouping::kLineBuffer
                               : OutputGrouping::kGroup;
  if (o_.delay > Duration::zero()) gate_.emplace(o_.delay);
  halt_ = HaltTracker(o_.halt);

  bool resuming = o_.resume || o_.resume_failed || o_.retry_failed;
  // GNU users start over by deleting the joblog: a resume without one is a new run.
  fresh_joblog_ = false;
  bool& fresh_joblog = fresh_joblog_;
  if (resuming && o_.joblog && *o_.joblog != "-") {
    struct stat st;
    fresh_joblog = ::stat(o_.joblog->c_str(), &st) != 0 || st.st_size == 0;
  }
  if (resuming && o_.joblog) {
    FORKLIFT_ASSIGN_OR_RETURN(history_, JoblogHistory::Read(*o_.joblog));
  }
  if (!o_.retry_failed) {
    bool reads_stdin = o_.inputs.empty();
    for (const InputSpec& spec : o_.inputs) {
      reads_stdin = reads_stdin || (spec.kind == InputSpec::Kind::kFile && spec.path == "-");
    }
    if (reads_stdin && ::isatty(io_.stdin_fd)) {
      // GNU parallel warns too: a forgotten ::: otherwise looks like a hang.
      std::string warning =
          "forklift map: reading arguments from the terminal; end them with Ctrl-D "
          "(Ctrl-C quits)\n";
      (void)!::write(io_.stderr_fd, warning.data(), warning.size());
    }
    FORKLIFT_ASSIGN_OR_RETURN(input_,
                              InputSource::Open(o_.inputs, o_.input_options(), io_.stdin_fd));
  }
  if (o_.joblog && !o_.dry_run && !o_.shell_quote) {
    JoblogMode mode = o_.joblog_append ? JoblogMode::kAppend
                      : resuming       ? JoblogMode::kResume
                                       : JoblogMode::kTruncate;
    FORKLIFT_ASSIGN_OR_RETURN(joblog_, JoblogWriter::Open(*o_.joblog, mode));
  }

  // The journal run: the same command template (and joblog) is the same run, so a
  // --resume finds what an earlier invocation recorded, whatever the input order.
  run_id_ = o_.run_id
                ? *o_.run_id
                : "map-" + core::Fnv1a().Add(template_text_).Add(o_.joblog.value_or("")).Hex();
  journal_path_ = journal::ResolveJournalPath(o_.journal.value_or(""));
  if (!o_.dry_run && !o_.shell_quote) {
    auto j = journal::Journal::Open(journal_path_);
    if (!j) return InvalidArgumentError("forklift map: --journal: " + j.error().message);
    journal_ = std::move(*j);
    if (resuming && !fresh_joblog) {
      FORKLIFT_ASSIGN_OR_RETURN(uint64_t recorded, journal_->CountItems(run_id_, std::nullopt));
      journal_has_run_ = recorded > 0;
      if (journal_has_run_) {
        fmt::print(stderr, "forklift map: resuming run {}: {} jobs recorded in the journal {}{}\n",
                   run_id_, recorded, journal_path_,
                   o_.joblog && *o_.joblog != "-"
                       ? fmt::format(" (to start over, delete the joblog '{}')", *o_.joblog)
                       : std::string(" (to start over, run without --resume)"));
      }
    } else {
      if (fresh_joblog && !o_.retry_failed) {
        fmt::print(stderr,
                   "forklift map: --resume: no joblog '{}' (or it is empty): "
                   "starting a new run\n",
                   *o_.joblog);
      }
      // A fresh run starts a fresh record, as a plain --joblog FILE starts a fresh log.
      FORKLIFT_RETURN_IF_ERROR(journal_->ClearItems(run_id_));
    }
  }
  if (o_.queue && !o_.dry_run && !o_.shell_quote) {
    FORKLIFT_ASSIGN_OR_RETURN(sinks::PgDsn dsn, sinks::ParsePgDsn(*o_.queue));
    // A resume adopts what the queue still holds of the run (a coordinator killed before
    // it ended, perhaps before the journal recorded anything): those jobs are followed,
    // not enqueued twice.
    auto coordinator = queue::QueueCoordinator::Start({.dsn = dsn,
                                                       .schema = o_.queue_schema,
                                                       .run = {.name = run_id_, .kind = "map"},
                                                       .adopt = resuming && !fresh_joblog,
                                                       .slice_items = o_.queue_slice,
                                                       .stderr_fd = io_.stderr_fd});
    if (!coordinator) {
      return tl::unexpected(Error{
          coordinator.error().code,
          fmt::format("forklift map: --queue {}: {}", dsn.Masked(), coordinator.error().message)});
    }
    queue_ = std::move(*coordinator);
    fmt::print(stderr, "forklift map: run {} goes through the queue {} (schema {})\n", run_id_,
               dsn.Masked(), o_.queue_schema);
  }
  return OkStatus();
}

int MapRun::DryRun() {
  uint64_t seq = 0;
  for (;;) {
    auto next = input_->Next();
    if (!next) {
      Fail(next.error());
      return 255;
    }
    if (!*next) return 0;
    std::string line = command_->Expand(**next, ++seq, 1);
    for (int i = 0; i < o_.shell_quote; ++i) line = ShellQuote(line);
    line += '\n';
    if (!writer_.Write(process::Stream::kStdout, line)) return 255;
  }
}

ItemResult<JobResult> MapRun::RunJob(const MapJob& job, ItemContext& ctx) {
  size_t slot = static_cast<size_t>(Executor::CurrentWorkerIndex()) + 1;
  JobResult r;
  r.seq = job.seq;
  if (o_.results) r.args = job.args;
  process::SpawnOptions spawn;
  if (job.fixed_command.empty()) {
    r.command = command_->Expand(job.args, job.seq, slot);
    if (auto argv = command_->ExpandArgv(job.args, job.seq, slot)) spawn.argv = std::move(*argv);
  } else {
    r.command = job.fixed_command;
  }
  if (spawn.argv.empty()) spawn.argv = {"/bin/sh", "-c", r.command};
  if (gate_) {
    std::optional<TimePoint> at =
        ctx.attempt() == 1 ? gate_->ReserveInOrder(job.index, clock_.Now(), ctx.stop_token())
                           : gate_->Reserve(clock_.Now());
    if (!at) return CancelledError("stopped before its --delay turn");
    if (auto s = ctx.SleepUntil(*at); !s) return std::move(s).error();
  }
  std::string tag = tag_ ? tag_->Expand(job.args, job.seq, slot) : std::string();
  r.output.emplace(grouping_, std::move(tag), &writer_, process::OutputBuffer::kDefaultMemoryLimit);
  spawn.stdout_mode = spawn.stderr_mode = r.output->SubprocessMode();
  // A chunk that cannot be written stops the job (its termseq, as a forced stop does);
  // the error ends the run once the job is over. Only jobs whose output passes through
  // us pay for a stop source of their own.
  std::stop_token stop = stops_.force;
  std::optional<std::stop_source> output_failed;
  auto forward_force = [&output_failed] { output_failed->request_stop(); };
  std::optional<std::stop_callback<decltype(forward_force)>> force_link;
  if (spawn.stdout_mode == process::OutputMode::kCallback) {
    output_failed.emplace();
    force_link.emplace(stops_.force, forward_force);
    stop = output_failed->get_token();
    spawn.on_output = [&r, &output_failed](process::Stream s, std::string_view bytes) {
      if (r.output_error) return;  // being stopped: the rest is dropped
      if (auto st = r.output->OnChunk(s, bytes); !st) {
        r.output_error = std::move(st).error();
        output_failed->request_stop();
      }
    };
  }
  if (o_.timeout && !o_.timeout->is_percent()) {
    spawn.timeout = o_.timeout->fixed;
  } else if (o_.timeout) {
    // GNU parallel: a share of the median runtime of the jobs that succeeded so far; no
    // limit until one has.
    if (auto median = median_.Median()) {
      spawn.timeout = std::chrono::duration_cast<Duration>(*median * (o_.timeout->percent / 100.0));
    }
  }
  spawn.termseq = termseq_;
  spawn.registry = &registry_;
  spawn.env = io_.job_env;
  auto ran =
      queue_ ? queue_->Run(job.key, ctx.attempt(), spawn, stop) : io_.run_command(spawn, stop);
  force_link.reset();
  // The engine retries what this says is retryable while attempts are left and the run
  // is not stopping; what it will not retry is final, and --halt counts it now.
  auto is_final = [&](const Error& e) {
    return !(ctx.attempt() < MaxAttempts() && IsRetryableJobError(e) && !ctx.Cancelled());
  };
  if (!ran) {
    // No process ran (spawn resources): a failure as far as --halt is concerned.
    Error e = std::move(ran).error();
    if (is_final(e)) {
      CountForHalt(255, 0, r.command, job.seq);
      r.counted_for_halt = true;
    }
    return ItemResult<JobResult>::Failed(std::move(e), std::move(r));
  }
  r.completion = std::move(*ran);
  const Completion& c = *r.completion;
  if (r.output_error) {
    r.counted_for_halt = true;  // it ends the run: no halt decision to make
    Error e = *r.output_error;
    return ItemResult<JobResult>::Failed(std::move(e), std::move(r));
  }
  if (c.ok()) {
    median_.Add(c.runtime);
    CountForHalt(0, 0, r.command, job.seq);
    r.counted_for_halt = true;
    return r;
  }
  Error e = c.timed_out   ? Error{ErrorCode::kDeadlineExceeded, "timed out"}
            : c.cancelled ? Error{ErrorCode::kCancelled, "killed"}
            : c.signal    ? Error{ErrorCode::kAborted, fmt::format("killed by signal {}", c.signal)}
                          : Error{ErrorCode::kAborted, fmt::format("exit {}", c.exit_code)};
  // One forklift killed did not finish and counts for nothing.
  if (c.cancelled) {
    r.counted_for_halt = true;
  } else if (is_final(e)) {
    // A timed-out job logs -1 as its exit value, as GNU parallel does.
    CountForHalt(c.timed_out ? -1 : (c.signal ? 0 : c.exit_code), c.signal, r.command, job.seq);
    r.counted_for_halt = true;
  }
  return ItemResult<JobResult>::Failed(std::move(e), std::move(r));
}

void MapRun::CountForHalt(int exit_value, int signal, const std::string& command, uint64_t seq) {
  std::lock_guard lock(halt_mu_);
  HaltDecision d = halt_.OnJobDone(exit_value, signal, jobs_ ? jobs_->total() : 0);
  if (d == HaltDecision::kContinue) return;
  if (!halt_said_) {
    halt_said_ = true;
    const HaltPolicy& h = o_.halt;
    std::string policy = fmt::format("{},{}={}{}", h.when == HaltWhen::kNow ? "now" : "soon",
                                     h.on == HaltOn::kFail      ? "fail"
                                     : h.on == HaltOn::kSuccess ? "success"
                                                                : "done",
                                     h.value, h.percent ? "%" : "");
    bool failed = exit_value != 0 || signal != 0;
    fmt::print(stderr, "forklift map: --halt {}: job {} {}: {}\nforklift map: --halt: {}\n", policy,
               seq,
               !failed            ? "succeeded"
               : signal           ? fmt::format("was killed by signal {}", signal)
               : exit_value == -1 ? std::string("timed out")
                                  : fmt::format("failed (exit {})", exit_value),
               command,
               d == HaltDecision::kNow ? "killing the running jobs and starting no more"
                                       : "starting no more jobs, waiting for the running ones");
  }
  halt_soon_.request_stop();
  if (d == HaltDecision::kNow) halt_now_.request_stop();
}

// A SIGKILL between the engine's journal commit of a job and its joblog row (OnOutcome,
// right after) leaves a succeeded job the joblog lacks; the resume that skips it writes the
// row then, so the joblog again holds every success (runtime 0: the journal keeps no start).
// Runs on the calling thread, as OnOutcome does: the JoblogWriter's one thread.
Status MapRun::RestoreJoblogRow(const MapJob& job) {
  if (!joblog_ || !history_ || history_->Ran(job.seq)) return OkStatus();
  JoblogEntry row;
  row.seq = job.seq;
  row.start_time = std::chrono::system_clock::now();
  row.command =
      job.fixed_command.empty() ? command_->Expand(job.args, job.seq, 1) : job.fixed_command;
  return joblog_->Append(row);
}

Status MapRun::OnOutcome(Outcome<JobResult>&& outcome) {
  // A job the stop reached before it started never ran: no output, no joblog row, no
  // journal entry (the engine records none), so --resume runs it, as in GNU parallel.
  if (outcome.attempts == 0) return OkStatus();
  ++started_;
  std::optional<JobResult> taken =
      outcome.ok() ? std::move(*outcome.value) : std::move(outcome.failed_value);
  if (!taken) {
    if (outcome.value.error().code == ErrorCode::kCancelled) {
      // Stopped before its next attempt (a retry backoff, a --delay): it did not finish,
      // so no row; the journal says cancelled and --resume runs it.
      fmt::print(stderr,
                 "forklift map: job {}: stopped before it finished (not logged; "
                 "--resume runs it again)\n",
                 outcome.index + 1);
    } else {
      fmt::print(stderr, "forklift map: job {}: {}\n", outcome.index + 1,
                 outcome.value.error().ToString());
    }
    return OkStatus();
  }
  JobResult& r = *taken;
  if (!r.completion) {
    // Failed before a process ran (spawn resources): no output, no row.
    if (!r.counted_for_halt) CountForHalt(255, 0, r.command, r.seq);
    fmt::print(stderr, "forklift map: job {}: {}\n", r.seq, outcome.value.error().ToString());
    return OkStatus();
  }
  const Completion& c = *r.completion;
  if (r.output_error) {
    fmt::print(stderr, "forklift map: job {} stopped: its output could not be written: {}\n", r.seq,
               r.command);
    return tl::unexpected(*r.output_error);
  }
  if (c.cancelled) {
    // Killed by forklift (a second signal, --halt now) before it finished: what it wrote
    // is kept, but it gets no joblog row (GNU parallel logs none either) and no halt
    // count; the journal records it as cancelled, so --resume runs it again.
    if (r.output) (void)r.output->Finish(&c);
    fmt::print(stderr,
               "forklift map: job {} killed before it finished (not logged; "
               "--resume runs it again): {}\n",
               r.seq, r.command);
    return OkStatus();
  }
  // A timed-out job logs -1 as its exit value, as GNU parallel does.
  int exit_value = c.timed_out ? -1 : (c.signal ? 0 : c.exit_code);
  // Final, but the worker could not know: a stop came before the engine's retry decision.
  if (!r.counted_for_halt) CountForHalt(exit_value, c.signal, r.command, r.seq);
  if (o_.results) {
    FORKLIFT_RETURN_IF_ERROR(WriteResults(*o_.results, r.args, r.seq, c));
  } else if (r.output) {
    if (auto s = r.output->Finish(&c); !s) {
      return InternalError(
          fmt::format("forklift map: writing the output of job {}: {}", r.seq, s.error().message));
    }
  }
  if (exit_value != 0 || c.signal != 0) ended_failed_.fetch_add(1, std::memory_order_relaxed);
  ended_.fetch_add(1, std::memory_order_relaxed);
  if (c.timed_out) {
    fmt::print(stderr, "forklift map: job {} was killed because it timed out: {}\n", r.seq,
               r.command);
  }
  if (joblog_) {
    JoblogEntry row;
    row.seq = r.seq;
    row.start_time = c.start;
    row.runtime = c.runtime;
    row.receive = c.stdout_bytes + c.stderr_bytes;
    row.exit_value = exit_value;
    row.signal = c.signal;
    row.command = r.command;
    FORKLIFT_RETURN_IF_ERROR(joblog_->Append(row));
  }
  return OkStatus();
}

int MapRun::Run() {
  if (auto s = Prepare(); !s) {
    Fail(s.error());
    return 255;
  }
  if (o_.dry_run || o_.shell_quote) return DryRun();

  // Either a signal or --halt stops the feeding; a forced stop or --halt now also kills.
  std::stop_source any_stop;
  std::stop_callback on_graceful(stops_.graceful, [&] { any_stop.request_stop(); });
  std::stop_callback on_halt(halt_soon_.get_token(), [&] { any_stop.request_stop(); });
  std::stop_source kill;
  std::stop_callback on_force(stops_.force, [&] { kill.request_stop(); });
  std::stop_callback on_halt_now(halt_now_.get_token(), [&] { kill.request_stop(); });
  stops_.force = kill.get_token();

  std::vector<std::pair<uint64_t, std::string>> fixed;
  if (o_.retry_failed && history_) fixed = history_->FailedCommands();
  bool skip_by_joblog = history_ && !journal_has_run_;
  // What the journal recorded decides a resume; finished jobs are skipped here (see
  // JobRange), so the engine is asked to skip nothing itself.
  JobRange::SkipRecorded skip_recorded;
  if (journal_has_run_) {
    bool skip_failed = o_.resume;
    skip_recorded = [this, skip_failed](const MapJob& job) -> Result<bool> {
      FORKLIFT_ASSIGN_OR_RETURN(journal::ItemState state, journal_->GetItemState(run_id_, job.key));
      if (state == journal::ItemState::kSucceeded) {
        FORKLIFT_RETURN_IF_ERROR(RestoreJoblogRow(job));
        return true;
      }
      return skip_failed && state == journal::ItemState::kFailed;
    };
  }
  JobRange jobs(input_.get(), std::move(fixed), skip_by_joblog ? &*history_ : nullptr, o_.resume,
                template_text_, std::move(skip_recorded));

  jobs_ = &jobs;
  BatchOptions b;
  b.workers = static_cast<size_t>(job_slots_);
  b.window = 2 * b.workers;
  // Timeouts are the subprocess layer's (termseq on the process group), not the engine's.
  b.timeout = std::nullopt;
  b.retry.max_attempts = MaxAttempts();
  b.retry.base_delay = o_.retry_delay;
  b.retry.max_delay = b.retry.base_delay * 64;
  b.retry.retry_if = [](const Error& e, int) { return IsRetryableJobError(e); };
  b.clock = &clock_;
  b.ordered = o_.keep_order;
  b.display = ProgressDisplay::kNone;  // the ticker below draws map's own progress
  b.batch_id = run_id_;
  b.run_kind = "map";
  b.run_name = template_text_;
  b.journal_path = journal_path_;
  b.resume = BatchOptions::Resume::kNone;  // JobRange skipped what the journal holds
  b.stop = any_stop.get_token();
  // --bar/--eta/--progress: a bar on a terminal, plain lines otherwise (never a \r or an
  // escape code in a file). Jobs a resume skipped count as done.
  std::optional<core::ProgressTicker> progress;
  if (o_.bar || o_.eta || o_.progress) {
    progress.emplace(
        core::ProgressTicker::Options{.display = ProgressDisplay::kAuto}, [this, &jobs] {
          uint64_t skipped = jobs.skipped();
          uint64_t total = jobs.total();
          return core::ProgressSnapshot{.label = "map",
                                        .unit = "jobs",
                                        .rate_unit = "jobs",
                                        .done = ended_.load(std::memory_order_relaxed) + skipped,
                                        .total = total,
                                        .failed = ended_failed_.load(std::memory_order_relaxed)};
        });
    progress->Start();
  }
  auto summary = run_batch(
      jobs, [this](const MapJob& job, ItemContext& ctx) { return RunJob(job, ctx); }, b,
      [this](Outcome<JobResult>&& o) { return OnOutcome(std::move(o)); });
  if (progress) progress->Stop();
  // Every job the engine followed has its outcome (or was given up): the run leaves the
  // queue, and what a worker still runs of it (a forced stop) is killed.
  if (queue_) queue_->Finish();
  if (!summary) {
    Fail(summary.error());
    return 255;
  }
  if (jobs.error()) {
    Fail(*jobs.error());
    return 255;
  }
  return halt_.ExitStatus(started_);
}

}  // namespace

int RunMap(const MapOptions& options, const MapStops& stops, process::ProcessRegistry& registry,
           const MapIo& io) {
  MapRun run(options, stops, registry, io);
  return run.Run();
}

}  // namespace forklift::map
