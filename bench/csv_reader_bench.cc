// The CSV reader's speed on the default dialect: reads a generated file of N rows (default
// 1,000,000, like bench/load_bench.sh's prices-1m.csv: 4 fields, one in 10 quoted with a
// doubled quote) R times and prints each run's rows/s and the median.
// Usage: csv_reader_bench [ROWS] [RUNS]
#include <fmt/format.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sources/byte_source.h"
#include "sources/csv_reader.h"

int main(int argc, char** argv) {
  using forklift::sources::ByteSource;
  using forklift::sources::CsvReader;
  const long rows = argc > 1 ? std::atol(argv[1]) : 1000000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  std::string path = fmt::format("/tmp/csv_reader_bench.{}.csv", ::getpid());
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return 1;
    std::fputs("symbol,date,price,note\n", f);
    for (long i = 0; i < rows; ++i) {
      if (i % 10 == 0) {
        fmt::print(f, "SYM{},2024-01-{:02},{}.{:02},\"said \"\"hi\"\", {}\"\n", i % 5000,
                   i % 28 + 1, i % 1000, i % 100, i);
      } else {
        fmt::print(f, "SYM{},2024-01-{:02},{}.{:02},plain note {}\n", i % 5000, i % 28 + 1,
                   i % 1000, i % 100, i);
      }
    }
    std::fclose(f);
  }
  std::vector<double> secs;
  for (int r = 0; r < runs; ++r) {
    auto src = ByteSource::Open(path);
    if (!src) return 1;
    CsvReader reader(std::move(*src), {});
    forklift::sources::CsvRecord rec;
    long n = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      auto got = reader.Next(&rec);
      if (!got) {
        fmt::print(stderr, "{}\n", got.error().message);
        return 1;
      }
      if (!*got) break;
      ++n;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    secs.push_back(s);
    fmt::print("run {}: {} records in {:.3f} s ({:.2f} M rows/s)\n", r + 1, n, s, n / s / 1e6);
  }
  std::sort(secs.begin(), secs.end());
  double median = secs[secs.size() / 2];
  fmt::print("median: {:.3f} s ({:.2f} M rows/s)\n", median, (rows + 1) / median / 1e6);
  std::remove(path.c_str());
  return 0;
}
