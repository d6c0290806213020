// The CSV reader alone: reads a generated file of N rows (default 1,000,000, like
// bench/load_bench.sh's prices-1m.csv: 4 fields) R times and prints each run's rows/s, the
// median, and a ROW line for bench/run_all.sh.
// Usage: csv_reader_bench [ROWS] [RUNS] [INPUT]
// INPUT (default quoted):
//   quoted    default dialect, one row in 10 with a quoted field holding doubled quotes
//   unquoted  default dialect, no quotes at all
//   escape    --quote "'" --escape '\': one row in 10 quoted with \' and \\ inside
//   skip      default dialect as quoted, with --skip-lines 3 (three comment lines first)
// Under callgrind, count only the reading (not the file's generation) with
//   valgrind --tool=callgrind --toggle-collect='*ReadAll*' csv_reader_bench 1000000 1
#include <fmt/format.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sources/byte_source.h"
#include "sources/csv_reader.h"

namespace {

using forklift::sources::ByteSource;
using forklift::sources::CsvDialect;
using forklift::sources::CsvReader;

// Writes the input; false when it cannot.
bool Generate(const std::string& path, long rows, std::string_view input) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  if (input == "skip") std::fputs("# generated\n# by csv_reader_bench\n# three lines\n", f);
  std::fputs("symbol,date,price,note\n", f);
  for (long i = 0; i < rows; ++i) {
    if (input != "unquoted" && i % 10 == 0) {
      if (input == "escape") {
        fmt::print(f, "SYM{},2024-01-{:02},{}.{:02},'said \\'hi\\', \\\\ {}'\n", i % 5000,
                   i % 28 + 1, i % 1000, i % 100, i);
      } else {
        fmt::print(f, "SYM{},2024-01-{:02},{}.{:02},\"said \"\"hi\"\", {}\"\n", i % 5000,
                   i % 28 + 1, i % 1000, i % 100, i);
      }
    } else {
      fmt::print(f, "SYM{},2024-01-{:02},{}.{:02},plain note {}\n", i % 5000, i % 28 + 1, i % 1000,
                 i % 100, i);
    }
  }
  return std::fclose(f) == 0;
}

// Reads the whole file once; the records read, or -1 after printing the error. Not inlined
// so that callgrind can count it alone (--toggle-collect).
[[gnu::noinline]] long ReadAll(const std::string& path, const CsvDialect& dialect) {
  auto src = ByteSource::Open(path);
  if (!src) {
    fmt::print(stderr, "{}\n", src.error().message);
    return -1;
  }
  CsvReader reader(std::move(*src), dialect);
  forklift::sources::CsvRecord rec;
  long n = 0;
  for (;;) {
    auto got = reader.Next(&rec);
    if (!got) {
      fmt::print(stderr, "{}\n", got.error().message);
      return -1;
    }
    if (!*got) break;
    ++n;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const long rows = argc > 1 ? std::atol(argv[1]) : 1000000;
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 7;
  const std::string input = argc > 3 ? argv[3] : "quoted";
  CsvDialect dialect;
  if (input == "escape") {
    dialect.quote = '\'';
    dialect.escape = '\\';
  } else if (input == "skip") {
    dialect.skip_lines = 3;
  } else if (input != "quoted" && input != "unquoted") {
    fmt::print(stderr, "unknown input '{}' (quoted, unquoted, escape, skip)\n", input);
    return 2;
  }
  std::string path = fmt::format("/tmp/csv_reader_bench.{}.csv", ::getpid());
  if (!Generate(path, rows, input)) {
    fmt::print(stderr, "cannot write {}\n", path);
    return 1;
  }
  std::vector<double> secs;
  for (int r = 0; r < runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    long n = ReadAll(path, dialect);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (n != rows + 1) {  // the header is a record too
      if (n >= 0) fmt::print(stderr, "read {} records, expected {}\n", n, rows + 1);
      std::remove(path.c_str());
      return 1;
    }
    secs.push_back(s);
    fmt::print("run {}: {} records in {:.3f} s ({:.2f} M rows/s)\n", r + 1, n, s, n / s / 1e6);
  }
  std::remove(path.c_str());
  std::sort(secs.begin(), secs.end());
  double median = secs[secs.size() / 2];
  double mrows = static_cast<double>(rows + 1) / median / 1e6;
  fmt::print("median: {:.3f} s ({:.2f} M rows/s)\n", median, mrows);
  fmt::print("ROW CSV reader, {} rows, {}|{:.2f} M rows/s|-|{:.3f} s median of {}|-|-\n", rows,
             input, mrows, median, runs);
  return 0;
}
