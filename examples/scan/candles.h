// The candles table (../shared/anchors/make_scan_db.py's schema) in SQLite: a deterministic
// generator, and a per-thread reader for the scan.
#ifndef FORKLIFT_EXAMPLES_SCAN_CANDLES_H_
#define FORKLIFT_EXAMPLES_SCAN_CANDLES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forklift/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace forklift::scan {

// "SYM00042"
std::string SymbolName(int i);

// Writes `symbols` × `days` random-walk candles (dates from 2020-01-01) to the table
// `candles` of `path`, replacing it; deterministic for a given seed, like gen_prices.py
// (not bit for bit: another RNG). InvalidArgument naming the path if it cannot be written.
Status GenerateCandles(const std::string& path, int symbols, int days, uint64_t seed);

// Writes the candles of symbols `first`..`first + symbols - 1` as CSV with a header
// (symbol,date,open,high,low,close,volume) to `path`, through `path`.tmp renamed into
// place. Each symbol's walk is seeded by (seed, symbol) alone, so slices written by
// different processes (the nightly demo's scrapers) add up to one consistent market.
// InvalidArgument naming the file when it cannot be written.
Status WriteCandlesCsv(const std::string& path, int first, int symbols, int days, uint64_t seed);

struct Series {
  std::vector<std::string> dates;
  std::vector<double> close;
};

// One read-only connection with the scan's prepared query. Not thread-safe: one per thread.
class CandleReader {
 public:
  static Result<std::unique_ptr<CandleReader>> Open(const std::string& path);
  ~CandleReader();
  // The symbol's closes between 2020-01-01 and 2021-12-31, ordered by date.
  Result<Series> Read(const std::string& symbol);

 private:
  CandleReader(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  size_t last_rows_ = 0;
};

}  // namespace forklift::scan

#endif  // FORKLIFT_EXAMPLES_SCAN_CANDLES_H_
