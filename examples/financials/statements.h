// examples/financials: three statements per ticker (income statement, balance sheet, cash
// flow), generated as CSV files, joined per ticker and quarter, and turned into metrics.
// Thread safety: pure functions and a reader used from one thread.
#ifndef FORKLIFT_EXAMPLES_FINANCIALS_STATEMENTS_H_
#define FORKLIFT_EXAMPLES_FINANCIALS_STATEMENTS_H_

#include <memory>
#include <string>
#include <vector>

#include "forklift/result.h"

namespace forklift::financials {

using Row = std::vector<std::string>;

// DIR/TICKER/{income,balance,cashflow}.csv for tickers T00000.. and quarters 2020Q1..,
// deterministic per seed. Every 97th ticker's third quarter has zero equity and every
// 89th ticker lacks its last balance sheet: rows the metrics refuse (dead letters).
// Failure: InvalidArgument naming a file that cannot be written.
Status GenerateStatements(const std::string& dir, int tickers, int quarters, uint64_t seed);

// The joined row's columns: ticker, quarter, the three statements' figures, and the
// previous quarter's revenue ("" for a ticker's first quarter).
const std::vector<std::string>& JoinedColumns();
// The metrics' columns (the table's): ticker, quarter, revenue, margins, ratios, free
// cash flow, revenue growth ("" = NULL for a first quarter).
const std::vector<std::string>& MetricColumns();
// CREATE TABLE IF NOT EXISTS for the metrics, in SQL both PostgreSQL and SQLite take.
std::string MetricsTableSql(const std::string& table);

// Walks DIR's tickers in name order, joining each ticker's statements by quarter, in
// quarter order: the same files always give the same rows in the same order (what a
// resume needs). Reads one ticker at a time (memory: one ticker's statements).
class StatementReader {
 public:
  // Failure: NotFound naming DIR when it cannot be listed.
  static Result<std::unique_ptr<StatementReader>> Open(const std::string& dir);
  // The next joined row: true, false at the end. Failure: InvalidArgument naming a file
  // that cannot be read or a line that does not have its statement's fields.
  Result<bool> Next(Row* row);

 private:
  StatementReader() = default;
  Status ReadTicker(const std::string& ticker);
  std::string dir_;
  std::vector<std::string> tickers_;
  size_t next_ticker_ = 0;
  std::vector<Row> rows_;  // the current ticker's joined rows
  size_t next_row_ = 0;
};

// The metrics of one joined row. Failure: InvalidArgument saying which figure makes them
// undefined (a missing statement, zero revenue, zero equity, a field that is no number).
Result<Row> DeriveMetrics(const Row& joined);

}  // namespace forklift::financials

#endif  // FORKLIFT_EXAMPLES_FINANCIALS_STATEMENTS_H_
