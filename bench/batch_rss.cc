// Peak memory of run_batch's streaming form over a generated range: N items of
// std::views::iota, a trivial fn (x * 2), a sink that only counts, no progress display.
// DESIGN.md: "memory is a function of the configuration, never of the input's size", so
// the peak RSS at N = 10,000,000 should be that at N = 1,000,000 (bench/run_all.sh runs
// this program once per N, each in a fresh process, and compares).
//
//   batch_rss N [WORKERS]
//
// prints: n=N workers=W ok=N peak_rss_kb=K elapsed=S
// Exits non-zero if any item failed or a value came back wrong, so a broken engine
// cannot pass for a frugal one.
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ranges>

#include "forklift/batch.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: batch_rss N [WORKERS]\n");
    return 2;
  }
  char* end = nullptr;
  long long n = std::strtoll(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || n < 1) {
    std::fprintf(stderr, "batch_rss: N must be an integer >= 1, got '%s'\n", argv[1]);
    return 2;
  }
  size_t workers = 2;
  if (argc == 3) {
    long long w = std::strtoll(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || w < 1) {
      std::fprintf(stderr, "batch_rss: WORKERS must be an integer >= 1, got '%s'\n", argv[2]);
      return 2;
    }
    workers = static_cast<size_t>(w);
  }

  forklift::BatchOptions options;
  options.workers = workers;
  options.display = forklift::ProgressDisplay::kNone;
  uint64_t ok = 0, failed = 0, wrong = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto summary = forklift::run_batch(
      std::views::iota(int64_t{0}, static_cast<int64_t>(n)), [](const int64_t& x) { return x * 2; },
      options,
      [&](forklift::Outcome<int64_t>&& o) {
        if (!o.ok()) {
          ++failed;
        } else if (*o.value != static_cast<int64_t>(o.index) * 2) {
          ++wrong;
        } else {
          ++ok;
        }
      });
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!summary) {
    std::fprintf(stderr, "batch_rss: %s\n", summary.error().ToString().c_str());
    return 1;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("n=%lld workers=%zu ok=%llu peak_rss_kb=%ld elapsed=%.2f\n", n, workers,
              static_cast<unsigned long long>(ok), usage.ru_maxrss, elapsed);
  if (failed != 0 || wrong != 0 || ok != static_cast<uint64_t>(n)) {
    std::fprintf(stderr, "batch_rss: %llu failed, %llu wrong values, %llu ok of %lld\n",
                 static_cast<unsigned long long>(failed), static_cast<unsigned long long>(wrong),
                 static_cast<unsigned long long>(ok), n);
    return 1;
  }
  return 0;
}
