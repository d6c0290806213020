// forklift-financials: the seeds' financials-bulk job on the C++ pipeline (load/pipeline.h).
// Three CSV statements per ticker are joined per ticker and quarter (the generator, on the
// reading thread), turned into metrics by C++ code (the sequential transform), and
// upserted in 5,000-row chunks over 4 connections, resumably: a rerun loads nothing, and a
// run killed midway resumes where its ledger stops.
//
//   forklift-financials generate --dir DIR [--tickers 2500] [--quarters 12] [--seed 7]
//   forklift-financials schema [--table financial_metrics]     # the CREATE TABLE
//   forklift-financials load --dir DIR --to TARGET [--table T] [--workers 4]
//                            [--chunk-rows 5000] [--journal J] [--json]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "financials/statements.h"
#include "load/exit_status.h"
#include "load/pipeline.h"

namespace {

namespace fl = forklift;
namespace load = forklift::load;

int Load(const std::string& dir, const std::string& to, const std::string& table, int workers,
         int64_t chunk_rows, const std::string& journal, bool json, const std::string& gate,
         uint64_t gate_after) {
  auto reader = fl::financials::StatementReader::Open(dir);
  if (!reader) {
    std::fprintf(stderr, "forklift-financials: %s\n", reader.error().ToString().c_str());
    return 2;
  }
  uint64_t yielded = 0;
  // The source's name stands for its rows (pipeline.h): the directory, absolute.
  const std::string name =
      "financials:" + std::filesystem::absolute(dir).lexically_normal().string();
  auto source = load::PipelineSource::Generate(
      name, fl::financials::JoinedColumns(),
      [r = std::shared_ptr<fl::financials::StatementReader>(std::move(*reader)), &yielded, &gate,
       gate_after](load::Row* row) -> fl::Result<bool> {
        // --gate (tests): after gate_after rows, wait for the file, so that a test can
        // kill the run while it has chunks committed and chunks to go.
        if (!gate.empty() && ++yielded > gate_after) {
          while (!std::filesystem::exists(gate)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }
        return r->Next(row);
      });
  load::PipelineOptions o;
  o.load.to = to;
  o.load.table = table;
  o.load.upsert = true;
  o.load.key = {"ticker", "quarter"};
  o.load.workers = workers;
  o.load.chunk_rows = chunk_rows;
  o.load.journal_path = journal;
  o.output_columns = fl::financials::MetricColumns();
  o.transform_name = "metrics";
  o.row_transform = [](const load::Row& in) -> fl::Result<std::vector<load::Row>> {
    FORKLIFT_ASSIGN_OR_RETURN(load::Row out, fl::financials::DeriveMetrics(in));
    return std::vector<load::Row>{std::move(out)};
  };
  auto s = load::RunPipeline(std::move(source), o, {}, {});
  if (!s) {
    std::fprintf(stderr, "forklift-financials: %s\n", s.error().ToString().c_str());
    return load::ExitStatusOf(s.error());
  }
  if (json) std::printf("%s\n", s->ToJson().c_str());
  std::fputs(s->ToText().c_str(), stderr);
  return load::ExitStatusOf(*s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("The seeds' financials-bulk job on forklift's C++ pipeline.", "forklift-financials");
  app.require_subcommand(1);
  std::string dir, to, table = "financial_metrics", journal, gate;
  int tickers = 2500, quarters = 12, workers = 4;
  uint64_t seed = 7, gate_after = 0;
  int64_t chunk_rows = 5000;
  bool json = false;
  CLI::App* gen = app.add_subcommand("generate", "write DIR/TICKER/{income,balance,cashflow}.csv");
  gen->add_option("--dir", dir, "where")->required();
  gen->add_option("--tickers", tickers, "tickers T00000.. (default 2500)")
      ->check(CLI::Range(1, 1000000));
  gen->add_option("--quarters", quarters, "quarters from 2020Q1 (default 12)")
      ->check(CLI::Range(1, 400));
  gen->add_option("--seed", seed, "(default 7)");
  CLI::App* schema = app.add_subcommand("schema", "print the metrics table's CREATE TABLE");
  schema->add_option("--table", table, "(default financial_metrics)");
  CLI::App* ld = app.add_subcommand("load", "join, derive and upsert the metrics");
  ld->add_option("--dir", dir, "the statements (generate's --dir)")->required();
  ld->add_option("--to", to, "postgres://..., conninfo or sqlite:PATH")->required();
  ld->add_option("--table", table, "(default financial_metrics; it must exist: see schema)");
  ld->add_option("--workers", workers, "connections (default 4; 1 for SQLite)")
      ->check(CLI::Range(1, 64));
  ld->add_option("--chunk-rows", chunk_rows, "rows per chunk (default 5000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  ld->add_option("--journal", journal, "the journal (default .forklift/journal.db)");
  ld->add_flag("--json", json, "print the summary as JSON on stdout");
  ld->add_option("--gate", gate, "tests: after --gate-after rows, wait for this file");
  ld->add_option("--gate-after", gate_after, "tests: rows before the gate");
  CLI11_PARSE(app, argc, argv);
  if (gen->parsed()) {
    if (auto st = forklift::financials::GenerateStatements(dir, tickers, quarters, seed); !st) {
      std::fprintf(stderr, "forklift-financials: %s\n", st.error().ToString().c_str());
      return 1;
    }
    return 0;
  }
  if (schema->parsed()) {
    std::printf("%s\n", forklift::financials::MetricsTableSql(table).c_str());
    return 0;
  }
  // SQLite takes one writer: 4 is the PostgreSQL default.
  if (to.starts_with("sqlite:") && ld->count("--workers") == 0) workers = 1;
  return Load(dir, to, table, workers, chunk_rows, journal, json, gate, gate_after);
}
