#include "financials/statements.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <system_error>

namespace forklift::financials {
namespace {

namespace fs = std::filesystem;

constexpr int kIncomeFields = 5;    // quarter,revenue,cogs,opex,net_income
constexpr int kBalanceFields = 6;   // quarter,total_assets,total_liabilities,equity,ca,cl
constexpr int kCashflowFields = 3;  // quarter,operating_cf,capex

std::string Quarter(int q) { return fmt::format("{}Q{}", 2020 + q / 4, q % 4 + 1); }

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// A statement's lines by quarter (its first field), header skipped.
Result<std::map<std::string, Row>> ReadStatement(const fs::path& path, size_t fields,
                                                 bool required) {
  std::map<std::string, Row> out;
  std::ifstream in(path);
  if (!in) {
    if (!required && !fs::exists(path)) return out;
    return InvalidArgumentError(fmt::format("{}: cannot be read", path.string()));
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (n == 1) continue;
    Row r = Split(line);
    if (r.size() != fields) {
      return InvalidArgumentError(
          fmt::format("{}:{}: {} fields, expected {}", path.string(), n, r.size(), fields));
    }
    std::string q = r[0];
    out.emplace(std::move(q), std::move(r));
  }
  return out;
}

Result<double> Number(const Row& row, size_t i, const char* what) {
  const std::string& s = row.at(i);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return InvalidArgumentError(fmt::format("{} '{}' is not a number", what, s));
  }
  return v;
}

std::string Fixed(double v) { return fmt::format("{:.6f}", v); }

}  // namespace

Status GenerateStatements(const std::string& dir, int tickers, int quarters, uint64_t seed) {
  for (int t = 0; t < tickers; ++t) {
    const std::string ticker = fmt::format("T{:05}", t);
    const fs::path d = fs::path(dir) / ticker;
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) return InvalidArgumentError(fmt::format("{}: {}", d.string(), ec.message()));
    std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(t));
    std::uniform_int_distribution<int> pct(-5, 8);
    std::ofstream income(d / "income.csv"), balance(d / "balance.csv"), cash(d / "cashflow.csv");
    income << "quarter,revenue,cogs,opex,net_income\n";
    balance << "quarter,total_assets,total_liabilities,equity,current_assets,current_liabilities\n";
    cash << "quarter,operating_cf,capex\n";
    int64_t revenue = 1000 + static_cast<int64_t>(rng() % 9000);
    for (int q = 0; q < quarters; ++q) {
      revenue += revenue * pct(rng) / 100;
      const int64_t cogs = revenue * (40 + static_cast<int64_t>(rng() % 30)) / 100;
      const int64_t opex = revenue * (10 + static_cast<int64_t>(rng() % 15)) / 100;
      const int64_t net = (revenue - cogs - opex) * 75 / 100;
      const int64_t assets = revenue * (2 + static_cast<int64_t>(rng() % 3));
      const int64_t liabilities = assets * (30 + static_cast<int64_t>(rng() % 40)) / 100;
      const int64_t equity = (t % 97 == 13 && q == 2) ? 0 : assets - liabilities;
      const int64_t ca = assets * (20 + static_cast<int64_t>(rng() % 20)) / 100;
      const int64_t cl = liabilities * (20 + static_cast<int64_t>(rng() % 30)) / 100 + 1;
      const int64_t opcf = net + revenue * static_cast<int64_t>(rng() % 10) / 100;
      const int64_t capex = revenue * static_cast<int64_t>(rng() % 12) / 100;
      const std::string quarter = Quarter(q);
      income << fmt::format("{},{},{},{},{}\n", quarter, revenue, cogs, opex, net);
      if (!(t % 89 == 5 && q == quarters - 1)) {
        balance << fmt::format("{},{},{},{},{},{}\n", quarter, assets, liabilities, equity, ca, cl);
      }
      cash << fmt::format("{},{},{}\n", quarter, opcf, capex);
    }
    if (!income || !balance || !cash) {
      return InvalidArgumentError(fmt::format("{}: cannot be written", d.string()));
    }
  }
  return {};
}

const std::vector<std::string>& JoinedColumns() {
  static const std::vector<std::string> kColumns = {"ticker",
                                                    "quarter",
                                                    "revenue",
                                                    "cogs",
                                                    "opex",
                                                    "net_income",
                                                    "total_assets",
                                                    "total_liabilities",
                                                    "equity",
                                                    "current_assets",
                                                    "current_liabilities",
                                                    "operating_cf",
                                                    "capex",
                                                    "prev_revenue"};
  return kColumns;
}

const std::vector<std::string>& MetricColumns() {
  static const std::vector<std::string> kColumns = {
      "ticker",        "quarter",       "revenue",        "gross_margin", "operating_margin",
      "net_margin",    "current_ratio", "debt_to_equity", "roe",          "free_cash_flow",
      "revenue_growth"};
  return kColumns;
}

std::string MetricsTableSql(const std::string& table) {
  return fmt::format(
      "CREATE TABLE IF NOT EXISTS {} (ticker TEXT NOT NULL, quarter TEXT NOT NULL, "
      "revenue DOUBLE PRECISION, gross_margin DOUBLE PRECISION, operating_margin DOUBLE "
      "PRECISION, net_margin DOUBLE PRECISION, current_ratio DOUBLE PRECISION, debt_to_equity "
      "DOUBLE PRECISION, roe DOUBLE PRECISION, free_cash_flow DOUBLE PRECISION, revenue_growth "
      "DOUBLE PRECISION, PRIMARY KEY (ticker, quarter));",
      table);
}

Result<std::unique_ptr<StatementReader>> StatementReader::Open(const std::string& dir) {
  std::unique_ptr<StatementReader> r(new StatementReader());
  r->dir_ = dir;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory()) r->tickers_.push_back(it->path().filename().string());
  }
  if (ec) return NotFoundError(fmt::format("--dir {}: {}", dir, ec.message()));
  std::sort(r->tickers_.begin(), r->tickers_.end());  // the order a resume reads again
  return r;
}

Status StatementReader::ReadTicker(const std::string& ticker) {
  const fs::path d = fs::path(dir_) / ticker;
  FORKLIFT_ASSIGN_OR_RETURN(auto income, ReadStatement(d / "income.csv", kIncomeFields, true));
  FORKLIFT_ASSIGN_OR_RETURN(auto balance, ReadStatement(d / "balance.csv", kBalanceFields, true));
  FORKLIFT_ASSIGN_OR_RETURN(auto cash, ReadStatement(d / "cashflow.csv", kCashflowFields, true));
  rows_.clear();
  next_row_ = 0;
  std::string prev_revenue;
  for (const auto& [quarter, inc] : income) {  // "2020Q1" < "2020Q2" < "2021Q1"
    Row r = {ticker, quarter};
    r.insert(r.end(), inc.begin() + 1, inc.end());
    // A missing statement leaves its fields empty: the metrics refuse the row.
    auto b = balance.find(quarter);
    for (int i = 1; i < kBalanceFields; ++i) r.push_back(b == balance.end() ? "" : b->second[i]);
    auto c = cash.find(quarter);
    for (int i = 1; i < kCashflowFields; ++i) r.push_back(c == cash.end() ? "" : c->second[i]);
    r.push_back(prev_revenue);
    prev_revenue = inc[1];
    rows_.push_back(std::move(r));
  }
  return {};
}

Result<bool> StatementReader::Next(Row* row) {
  while (next_row_ == rows_.size()) {
    if (next_ticker_ == tickers_.size()) return false;
    FORKLIFT_RETURN_IF_ERROR(ReadTicker(tickers_[next_ticker_++]));
  }
  *row = std::move(rows_[next_row_++]);
  return true;
}

Result<Row> DeriveMetrics(const Row& j) {
  if (j.size() != JoinedColumns().size()) {
    return InvalidArgumentError(
        fmt::format("{} fields, expected {}", j.size(), JoinedColumns().size()));
  }
  if (j[6].empty()) return InvalidArgumentError("no balance sheet for " + j[1]);
  if (j[11].empty()) return InvalidArgumentError("no cash flow statement for " + j[1]);
  FORKLIFT_ASSIGN_OR_RETURN(double revenue, Number(j, 2, "revenue"));
  FORKLIFT_ASSIGN_OR_RETURN(double cogs, Number(j, 3, "cogs"));
  FORKLIFT_ASSIGN_OR_RETURN(double opex, Number(j, 4, "opex"));
  FORKLIFT_ASSIGN_OR_RETURN(double net, Number(j, 5, "net_income"));
  FORKLIFT_ASSIGN_OR_RETURN(double liabilities, Number(j, 7, "total_liabilities"));
  FORKLIFT_ASSIGN_OR_RETURN(double equity, Number(j, 8, "equity"));
  FORKLIFT_ASSIGN_OR_RETURN(double ca, Number(j, 9, "current_assets"));
  FORKLIFT_ASSIGN_OR_RETURN(double cl, Number(j, 10, "current_liabilities"));
  FORKLIFT_ASSIGN_OR_RETURN(double opcf, Number(j, 11, "operating_cf"));
  FORKLIFT_ASSIGN_OR_RETURN(double capex, Number(j, 12, "capex"));
  if (revenue == 0) return InvalidArgumentError("revenue is 0: margins undefined");
  if (equity == 0) return InvalidArgumentError("equity is 0: debt_to_equity and roe undefined");
  if (cl == 0) return InvalidArgumentError("current_liabilities is 0: current_ratio undefined");
  std::string growth;  // NULL for a first quarter
  if (!j[13].empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(double prev, Number(j, 13, "prev_revenue"));
    if (prev != 0) growth = Fixed(revenue / prev - 1);
  }
  return Row{j[0],
             j[1],
             Fixed(revenue),
             Fixed((revenue - cogs) / revenue),
             Fixed((revenue - cogs - opex) / revenue),
             Fixed(net / revenue),
             Fixed(ca / cl),
             Fixed(liabilities / equity),
             Fixed(net / equity),
             Fixed(opcf - capex),
             growth};
}

}  // namespace forklift::financials
