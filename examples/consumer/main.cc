// A program that uses an installed forklift, built outside the source tree: with CMake's
// find_package (CMakeLists.txt here) or with pkg-config (Makefile here). tests/install_test.py
// builds it both ways against a fresh install and runs it.
//
// usage: forklift-consumer JOURNAL   checks run_batch end to end, exit 0 when all is well
#include <forklift/batch.h>
#include <forklift/version.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s JOURNAL\n", argv[0]);
    return 2;
  }
  // The headers compiled against and the library linked are the same release.
  if (std::strcmp(forklift::LibraryVersion(), FORKLIFT_VERSION_STRING) != 0) {
    std::fprintf(stderr, "headers %s, library %s\n", FORKLIFT_VERSION_STRING,
                 forklift::LibraryVersion());
    return 1;
  }
  std::vector<int> items;
  for (int i = 1; i <= 100; ++i) items.push_back(i);

  forklift::BatchOptions options;
  options.workers = 4;
  options.display = forklift::ProgressDisplay::kNone;
  options.retry = {.max_attempts = 3, .base_delay = std::chrono::milliseconds(1)};
  options.batch_id = "consumer";  // checkpoints in the journal (SQLite, inside libforklift)
  options.journal_path = argv[1];
  // Item 7 fails once with a retryable error, item 13 for good: neither stops the others.
  auto square = [](const int& i, forklift::ItemContext& ctx) -> forklift::Result<int> {
    if (i == 13)
      return tl::unexpected(forklift::Error{forklift::ErrorCode::kInvalidArgument, "13"});
    if (i == 7 && ctx.attempt() == 1) {
      return tl::unexpected(forklift::Error{forklift::ErrorCode::kUnavailable, "try again"});
    }
    return i * i;
  };
  auto first = forklift::run_batch(items, square, options);
  if (!first) {
    std::fprintf(stderr, "run_batch: %s\n", first.error().ToString().c_str());
    return 1;
  }
  long sum = 0;
  for (const auto& o : first->outcomes) {
    if (o.ok()) sum += *o.value;
  }
  const forklift::Summary& s = first->summary;
  std::printf("forklift %s: %s\n", forklift::LibraryVersion(), s.ToString().c_str());
  // 1² + ... + 100² = 338350, less 13² = 338181.
  if (s.succeeded != 99 || s.failed != 1 || s.retried != 1 || sum != 338181) {
    std::fprintf(stderr, "unexpected outcome: sum %ld\n", sum);
    return 1;
  }
  // A rerun with the same batch_id skips what succeeded and runs item 13 again.
  auto second = forklift::run_batch(items, square, options);
  if (!second || second->summary.skipped != 99 || second->summary.failed != 1) {
    std::fprintf(stderr, "the rerun did not resume from the journal\n");
    return 1;
  }
  std::printf("rerun: %s\n", second->summary.ToString().c_str());
  return 0;
}
