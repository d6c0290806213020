// forklift-queue-batch: run_batch through a PostgreSQL queue (forklift/queue_batch.h). One
// program, two roles: the coordinator runs the batch, each worker serves the same item
// function.
//
//   forklift-queue-batch coordinate DSN N [--batch-id ID] [--slice N] [--empty]
//   forklift-queue-batch serve DSN [-j N] [--max-idle-ms MS] [--empty]
//
// The item function (items 0..N-1): item i returns {i, "v" + i * 2}; i % 97 == 13 fails
// with Aborted("item I is unlucky") and keeps its value; with $FORKLIFT_EXAMPLE_SLOW set
// every item first writes "PID I" to that file, waits while FILE.hold exists, and sleeps
// 50 ms.
// --empty: the item function does nothing (the dispatch benchmark).
//
// The coordinator prints one line per outcome, "ok I VALUE" or "err I CODE MESSAGE", then
// "summary processed=... succeeded=... failed=... items_per_s=...". A worker prints
// "served items=... claims=... claim_p50_us=... claim_p99_us=..." when it exits.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "forklift/queue_batch.h"

namespace {

using Value = std::pair<int64_t, std::string>;

forklift::ItemResult<Value> Work(const int64_t& i, forklift::ItemContext& ctx) {
  if (const char* slow = std::getenv("FORKLIFT_EXAMPLE_SLOW"); slow && *slow) {
    std::string line = std::to_string(::getpid()) + " " + std::to_string(i) + "\n";
    int fd = ::open(slow, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
    }
    // While SLOW.hold exists, items block (a test's worker to SIGKILL with items in hand).
    const std::string hold = std::string(slow) + ".hold";
    while (::access(hold.c_str(), F_OK) == 0 && !ctx.Cancelled()) {
      ctx.SleepUntil(ctx.clock().Now() + std::chrono::milliseconds(10));
    }
    ctx.SleepUntil(ctx.clock().Now() + std::chrono::milliseconds(50));
    if (ctx.Cancelled()) return forklift::Error{forklift::ErrorCode::kCancelled, "stopped"};
  }
  Value v{i, "v" + std::to_string(i * 2)};
  if (i % 97 == 13) {
    return forklift::ItemResult<Value>::Failed(
        forklift::AbortedError("item " + std::to_string(i) + " is unlucky"), std::move(v));
  }
  return v;
}

int64_t Empty(const int64_t& i) { return i; }

long Arg(int argc, char** argv, const char* name, long fallback) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
  return fallback;
}
std::string StrArg(int argc, char** argv, const char* name) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return "";
}
bool Flag(int argc, char** argv, const char* name) {
  for (int i = 0; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

template <class Fn>
int Coordinate(const std::string& dsn, int64_t n, int argc, char** argv, Fn fn) {
  forklift::BatchOptions o;
  o.display = forklift::ProgressDisplay::kNone;
  o.batch_id = StrArg(argc, argv, "--batch-id");
  o.timeout = std::chrono::seconds(30);
  forklift::QueueOptions q{.dsn = dsn};
  q.slice_items = static_cast<size_t>(Arg(argc, argv, "--slice", 500));
  auto items = std::views::iota(int64_t{0}, n);
  using V = forklift::detail::ValueT<Fn, int64_t>;
  const bool quiet = Flag(argc, argv, "--quiet");
  auto summary = forklift::run_batch(items, fn, o, q, [&](forklift::Outcome<V>&& out) {
    if (quiet) return;
    if (out.ok()) {
      if constexpr (std::is_same_v<V, Value>) {
        std::printf("ok %llu %lld %s\n", static_cast<unsigned long long>(out.index),
                    static_cast<long long>(out.value->first), out.value->second.c_str());
      } else {
        std::printf("ok %llu\n", static_cast<unsigned long long>(out.index));
      }
    } else {
      std::printf("err %llu %d %s%s\n", static_cast<unsigned long long>(out.index),
                  static_cast<int>(out.value.error().code), out.value.error().message.c_str(),
                  out.failed_value ? " (with value)" : "");
    }
  });
  if (!summary) {
    std::fprintf(stderr, "forklift-queue-batch: %s\n", summary.error().message.c_str());
    return 2;
  }
  std::printf("summary processed=%llu succeeded=%llu failed=%llu skipped=%llu items_per_s=%.0f\n",
              static_cast<unsigned long long>(summary->processed),
              static_cast<unsigned long long>(summary->succeeded),
              static_cast<unsigned long long>(summary->failed),
              static_cast<unsigned long long>(summary->skipped), summary->items_per_second);
  return summary->failed ? 1 : 0;
}

template <class Fn>
int Serve(const std::string& dsn, int argc, char** argv, Fn fn) {
  forklift::ServeOptions o{.dsn = dsn};
  o.workers = static_cast<size_t>(Arg(argc, argv, "-j", 2));
  o.max_idle = std::chrono::milliseconds(Arg(argc, argv, "--max-idle-ms", 3000));
  o.lease = std::chrono::milliseconds(Arg(argc, argv, "--lease-ms", 10000));
  o.prefetch = static_cast<size_t>(Arg(argc, argv, "--prefetch", 0));
  o.claim_slices = static_cast<int>(Arg(argc, argv, "--claim-slices", 1));
  auto r = forklift::serve_queue<int64_t>(fn, o);
  std::printf("served items=%llu claims=%llu claim_p50_us=%lld claim_p99_us=%lld\n",
              static_cast<unsigned long long>(r.items), static_cast<unsigned long long>(r.claims),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(r.claim_p50).count()),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(r.claim_p99).count()));
  return r.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: forklift-queue-batch coordinate DSN N [...] | serve DSN [...]\n");
    return 2;
  }
  std::string role = argv[1], dsn = argv[2];
  bool empty = Flag(argc, argv, "--empty");
  if (role == "coordinate" && argc >= 4) {
    int64_t n = std::atoll(argv[3]);
    return empty ? Coordinate(dsn, n, argc, argv, Empty) : Coordinate(dsn, n, argc, argv, Work);
  }
  if (role == "serve") return empty ? Serve(dsn, argc, argv, Empty) : Serve(dsn, argc, argv, Work);
  std::fprintf(stderr, "forklift-queue-batch: unknown role %s\n", role.c_str());
  return 2;
}
