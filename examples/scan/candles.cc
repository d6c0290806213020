#include "scan/candles.h"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

namespace forklift::scan {

std::string SymbolName(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "SYM%05d", i);
  return buf;
}

namespace {

// "2020-01-01" onwards, one per day; formatted once, every symbol shares them.
std::vector<std::string> CandleDates(int days) {
  std::vector<std::string> dates;
  using namespace std::chrono;
  sys_days d0 = year{2020} / January / 1;
  for (int d = 0; d < days; ++d) {
    year_month_day ymd{d0 + std::chrono::days{d}};
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    dates.emplace_back(buf);
  }
  return dates;
}

struct Candle {
  double open, high, low, close;
  int64_t volume;
};

// The walk's random source. Kept across symbols where one stream serves them all (the
// normal distribution caches every other draw, so a fresh one would change the stream).
struct CandleDraws {
  explicit CandleDraws(uint64_t seed) : rng(seed) {}
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> unit{0.0, 1.0};
  std::normal_distribution<double> step{0.0, 0.02};
  std::uniform_int_distribution<int64_t> volume{1000, 1000000};
};

// One symbol's random walk of `days` candles; emit(day, candle) for each. Returns false
// as soon as emit does.
template <class Emit>
bool WalkCandles(CandleDraws& r, int days, Emit&& emit) {
  auto& rng = r.rng;
  double p = 50 + r.unit(rng) * 100;
  for (int d = 0; d < days; ++d) {
    double o = p, c = p * (1 + r.step(rng));
    p = c;
    if (!emit(d, Candle{o, std::max(o, c) * 1.01, std::min(o, c) * 0.99, c, r.volume(rng)})) {
      return false;
    }
  }
  return true;
}

}  // namespace

Status GenerateCandles(const std::string& path, int symbols, int days, uint64_t seed) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  sqlite3* raw = nullptr;
  if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK) {
    std::string why = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close(raw);
    return InvalidArgumentError("cannot create '" + path + "': " + why);
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close);
  auto exec = [&](const char* sql) -> Status {
    if (sqlite3_exec(raw, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return InvalidArgumentError("'" + path + "': " + sqlite3_errmsg(raw));
    }
    return OkStatus();
  };
  FORKLIFT_RETURN_IF_ERROR(
      exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;"
           "CREATE TABLE candles(symbol text, date text, open real, high real, low real,"
           " close real, volume integer, primary key(symbol, date)) without rowid"));
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(raw, "INSERT INTO candles VALUES(?,?,?,?,?,?,?)", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    return InternalError(sqlite3_errmsg(raw));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(stmt, sqlite3_finalize);

  const std::vector<std::string> dates = CandleDates(days);
  CandleDraws draws(seed);  // one stream over every symbol
  for (int s = 0; s < symbols; ++s) {
    std::string sym = SymbolName(s);
    bool ok = WalkCandles(draws, days, [&](int d, const Candle& c) {
      sqlite3_bind_text(stmt, 1, sym.data(), static_cast<int>(sym.size()), SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, dates[d].data(), static_cast<int>(dates[d].size()), SQLITE_STATIC);
      sqlite3_bind_double(stmt, 3, c.open);
      sqlite3_bind_double(stmt, 4, c.high);
      sqlite3_bind_double(stmt, 5, c.low);
      sqlite3_bind_double(stmt, 6, c.close);
      sqlite3_bind_int64(stmt, 7, c.volume);
      bool done = sqlite3_step(stmt) == SQLITE_DONE;
      sqlite3_reset(stmt);
      return done;
    });
    if (!ok) return InternalError(sqlite3_errmsg(raw));
  }
  return exec("COMMIT");
}

Status WriteCandlesCsv(const std::string& path, int first, int symbols, int days, uint64_t seed) {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "w"), std::fclose);
  if (!f) return InvalidArgumentError("cannot create '" + tmp + "': " + std::strerror(errno));
  std::fputs("symbol,date,open,high,low,close,volume\n", f.get());
  const std::vector<std::string> dates = CandleDates(days);
  for (int s = first; s < first + symbols; ++s) {
    // Seeded per symbol: a symbol's candles do not depend on which slice wrote them.
    CandleDraws draws(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(s));
    const std::string sym = SymbolName(s);
    WalkCandles(draws, days, [&](int d, const Candle& c) {
      return std::fprintf(f.get(), "%s,%s,%.4f,%.4f,%.4f,%.4f,%lld\n", sym.c_str(),
                          dates[d].c_str(), c.open, c.high, c.low, c.close,
                          static_cast<long long>(c.volume)) > 0;
    });
  }
  if (std::ferror(f.get()) || std::fclose(f.release()) != 0) {
    return InvalidArgumentError("cannot write '" + tmp + "': " + std::strerror(errno));
  }
  // Renamed into place: a scraper killed half-way never leaves half a file under `path`.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return InvalidArgumentError("cannot rename '" + tmp + "' to '" + path +
                                "': " + std::strerror(errno));
  }
  return OkStatus();
}

Result<std::unique_ptr<CandleReader>> CandleReader::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return InvalidArgumentError("--db: cannot open '" + path + "': " + why);
  }
  // A writer may hold the file for a moment (the nightly flow's maintenance tasks rebuild a
  // table beside the scan): wait for it rather than fail on SQLITE_BUSY.
  sqlite3_busy_timeout(db, 10000);
  // Memory-mapped pages and one read transaction for the reader's whole life: no read()
  // or lock syscalls per query, and every symbol sees the same snapshot.
  if (sqlite3_exec(db, "PRAGMA mmap_size=1073741824; BEGIN; SELECT 1 FROM sqlite_schema LIMIT 1",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    return InvalidArgumentError("--db: cannot read '" + path + "': " + why);
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT date, close FROM candles WHERE symbol = ? AND date BETWEEN "
                         "'2020-01-01' AND '2021-12-31' ORDER BY date",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    return InvalidArgumentError("--db: '" + path + "' has no usable candles table: " + why);
  }
  return std::unique_ptr<CandleReader>(new CandleReader(db, stmt));
}

CandleReader::~CandleReader() {
  sqlite3_finalize(stmt_);
  sqlite3_close(db_);
}

Result<Series> CandleReader::Read(const std::string& symbol) {
  sqlite3_bind_text(stmt_, 1, symbol.data(), static_cast<int>(symbol.size()), SQLITE_STATIC);
  Series s;
  // Symbols have about as many rows as the one before: reserve that, and skip regrowth.
  s.dates.reserve(last_rows_);
  s.close.reserve(last_rows_);
  int rc;
  while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) {
    s.dates.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt_, 0)),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, 0)));
    s.close.push_back(sqlite3_column_double(stmt_, 1));
  }
  last_rows_ = s.close.size();
  std::string why = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  if (rc != SQLITE_DONE) {
    // A locked or busy database is worth another try; anything else is not.
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return UnavailableError(symbol + ": " + why);
    return InternalError(symbol + ": " + why);
  }
  return s;
}

}  // namespace forklift::scan
