// forklift-scan: the seeds' ProcessPoolExecutor batch (../shared/anchors/scan_ppe.py) on
// forklift::run_batch. For each symbol, read its candles, compute SMA20/SMA50/RSI14 and
// report the dates where SMA20 crosses above SMA50 with RSI14 < 60.
//
//   forklift-scan --db SCAN.db --workers N [--symbols N] [--print-matches]
//   forklift-scan --generate SCAN.db [--symbols N] [--days D] [--seed S]
//   forklift-scan --csv PRICES.csv [--first K] [--symbols N] [--days D] [--seed S]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "forklift/batch.h"
#include "scan/candles.h"
#include "scan/indicators.h"

namespace {

using forklift::Result;
using forklift::scan::CandleReader;

// Each worker thread keeps its own connection and prepared statement, opened on first use.
Result<std::vector<std::string>> ScanSymbol(const std::string& db, const std::string& symbol) {
  thread_local std::unique_ptr<CandleReader> reader;
  if (!reader) {
    FORKLIFT_ASSIGN_OR_RETURN(reader, CandleReader::Open(db));
  }
  FORKLIFT_ASSIGN_OR_RETURN(forklift::scan::Series series, reader->Read(symbol));
  std::vector<std::string> dates;
  for (size_t i : forklift::scan::CrossoverSignals(series.close)) {
    dates.push_back(std::move(series.dates[i]));
  }
  return dates;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Scan candles for SMA20/SMA50 crossovers with RSI14 < 60, on run_batch.",
               "forklift-scan");
  std::string db, generate, csv;
  size_t workers = forklift::BatchOptions::DefaultWorkerCount();
  int symbols = 2500, days = 504, first = 0;
  uint64_t seed = 7;
  bool print_matches = false;
  app.add_option("--db", db, "SQLite database with a candles table");
  app.add_option("--generate", generate, "write a generated candles database to this path");
  app.add_option("--csv", csv, "write generated candles as CSV to this path (a scraper's output)");
  app.add_option("--first", first, "with --csv: the first symbol's number (default 0)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--workers", workers, "worker threads (default: one per core)");
  // 0 is allowed: --generate --symbols 0 writes the empty candles table a load can fill.
  app.add_option("--symbols", symbols, "symbols SYM00000.. to scan or generate (default 2500)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--days", days, "days per symbol to generate (default 504)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--seed", seed, "generator seed (default 7)");
  app.add_flag("--print-matches", print_matches, "print every match as 'SYMBOL DATE', sorted");
  // One line naming the bad option, not CLI11's two-line default.
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "forklift-scan: %s\n", e.what());
    return 2;
  }

  if (symbols == 0 && generate.empty()) {
    std::fprintf(stderr, "forklift-scan: --symbols 0: only with --generate (an empty table)\n");
    return 2;
  }
  if (!csv.empty()) {
    auto s = forklift::scan::WriteCandlesCsv(csv, first, symbols, days, seed);
    if (!s) {
      std::fprintf(stderr, "forklift-scan: --csv: %s\n", s.error().message.c_str());
      return 1;
    }
    return 0;
  }
  if (!generate.empty()) {
    auto s = forklift::scan::GenerateCandles(generate, symbols, days, seed);
    if (!s) {
      std::fprintf(stderr, "forklift-scan: --generate: %s\n", s.error().message.c_str());
      return 1;
    }
    return 0;
  }
  if (workers == 0) {
    std::fprintf(stderr, "forklift-scan: --workers must be >= 1, got 0\n");
    return 2;
  }
  if (db.empty()) {
    std::fprintf(stderr, "forklift-scan: --db is required (or --generate PATH)\n");
    return 2;
  }
  // Open once up front so a bad --db is one clear error, not 2,500 failed items.
  if (auto probe = CandleReader::Open(db); !probe) {
    std::fprintf(stderr, "forklift-scan: %s\n", probe.error().message.c_str());
    return 2;
  }

  std::vector<std::string> syms;
  for (int i = 0; i < symbols; ++i) syms.push_back(forklift::scan::SymbolName(i));
  forklift::BatchOptions options;
  options.workers = workers;
  options.display = forklift::ProgressDisplay::kNone;
  auto t0 = std::chrono::steady_clock::now();
  auto result = forklift::run_batch(
      syms, [&](const std::string& sym) { return ScanSymbol(db, sym); }, options);
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!result) {
    std::fprintf(stderr, "forklift-scan: %s\n", result.error().ToString().c_str());
    return 2;
  }
  size_t matches = 0, failed = 0;
  std::vector<std::pair<std::string, std::string>> all;
  for (const auto& o : result->outcomes) {
    if (!o.ok()) {
      ++failed;
      std::fprintf(stderr, "forklift-scan: %s: %s\n", syms[o.index].c_str(),
                   o.value.error().ToString().c_str());
      continue;
    }
    matches += o.value->size();
    if (print_matches) {
      for (const auto& d : *o.value) all.emplace_back(syms[o.index], d);
    }
  }
  std::sort(all.begin(), all.end());
  for (const auto& [sym, date] : all) std::printf("%s %s\n", sym.c_str(), date.c_str());
  std::printf("symbols=%zu matches=%zu elapsed=%.2f\n", result->outcomes.size() - failed, matches,
              elapsed);
  return failed == 0 ? 0 : 1;
}
