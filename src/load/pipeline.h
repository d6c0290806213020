// The C++ pipeline: `forklift load` for a program that makes or reshapes its rows in C++.
//
//   load::PipelineOptions o;
//   o.load.to = "postgres://...";  o.load.table = "metrics";
//   o.load.upsert = true;  o.load.key = {"ticker", "quarter"};  o.load.workers = 4;
//   o.output_columns = {"ticker", "quarter", "margin"};
//   o.row_transform = [](const load::Row& in) -> Result<std::vector<load::Row>> { ... };
//   auto summary = load::RunPipeline(load::PipelineSource::Generate("metrics", cols, next), o);
//
// A source of rows (files, a query, or the program's own generator) goes through the
// chunker, then through the program's transform on one thread of its own, in read order
// (the "keep CPU sequential" half of the pattern), then to the parallel chunked writers
// (the "parallelize I/O" half): RunLoad's machinery, unchanged, with the same ledger in
// the target's transaction, dead letters in the journal, progress and summary as the CLI.
//
// Resume: a chunk is known by its number, source name, lines and the checksum of its
// source bytes, before the transform. A rerun of the same pipeline (same source, target,
// table, options; LoadSummary::load_id) skips the chunks its ledger holds without
// transforming them again, so:
//   - a generator must yield the same rows in the same order on every run, and its name
//     stands for them (the default load id hashes the name, not the rows): if it yields
//     other rows, the load fails (FailedPrecondition: "source changed") and names the
//     chunk, before writing it; if it must yield other rows, give it another name or
//     another load id;
//   - a transform must be a function of its input alone (no state carried across rows or
//     chunks): on a resume it never sees the chunks skipped.
//
// Rows: a Row is the fields of one record, as text. A field equal to the load's null
// string (LoadOptions::null_string, default "") is NULL; any other field is its text.
// Fields are CSV-quoted as needed, so any byte but NUL may appear (as valid UTF-8).
//
// This header is in-tree only (src/load/ is private; it is not installed with
// libforklift, whose components have no libpq: docs/install.md). Programs built in this
// tree (examples/financials) link forklift_load.
#ifndef FORKLIFT_LOAD_PIPELINE_H_
#define FORKLIFT_LOAD_PIPELINE_H_

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "forklift/result.h"
#include "load/load_options.h"
#include "load/load_runner.h"

namespace forklift::load {

using Row = std::vector<std::string>;

// Where the rows come from. Make one with Files, Query or Generate.
struct PipelineSource {
  // Yields the next row into *row: true, or false at the end (row unused). An error fails
  // the load with that error (its code kept, the message prefixed with the source's name);
  // an exception fails it as Internal naming it. Called on RunPipeline's thread, one row
  // at a time; what was read before a failure but not committed is read again on resume.
  using Generator = std::function<Result<bool>(Row* row)>;

  // CSV or JSON Lines files, as `forklift load SOURCES` reads them.
  static PipelineSource Files(std::vector<std::string> paths);
  // The rows of `query` on `from` (postgres://..., conninfo, sqlite:PATH), as --from and
  // --query read them; resume options (--resume-key, ...) are the LoadOptions'.
  static PipelineSource Query(std::string from, std::string query);
  // The program's rows: `columns` name their fields; a row with another number of fields
  // is a dead letter ("expected N fields"). `name` is what the ledger and dead letters
  // record as their source (lines are row numbers + 1: line 1 is the header).
  static PipelineSource Generate(std::string name, std::vector<std::string> columns,
                                 Generator next);

  std::vector<std::string> files;
  std::string from, query;
  std::string name;
  std::vector<std::string> columns;
  Generator next;
};

// One input row in, its output rows out (none drops it). An error or an exception makes
// that input row a dead letter whose reason is "transform NAME: " and the error.
using RowTransform = std::function<Result<std::vector<Row>>(const Row& in)>;
// A chunk's rows in (at most LoadOptions::chunk_rows), its output rows out. An error or
// an exception makes every input row of the chunk a dead letter, with that reason.
using BatchTransform = std::function<Result<std::vector<Row>>(std::span<const Row> in)>;

struct PipelineOptions {
  // The target, the table, the mode, the key, the writers, the chunking, the journal, the
  // display, --max-errors, ...: as for `forklift load`. Its sources, from, query and
  // transform must be empty (the PipelineSource and the transform below say them).
  LoadOptions load;
  // At most one of the two; neither: rows are loaded as they are read.
  RowTransform row_transform;
  BatchTransform batch_transform;
  // The transform's output columns, the target's (required with a transform). An output
  // row with another number of fields makes its input row (BatchTransform: every row of
  // the chunk) a dead letter. The key must be among both the input's and these.
  std::vector<std::string> output_columns;
  std::string transform_name = "transform";  // in dead letters' reasons and the journal
};

// Runs the pipeline to its end: RunLoad's contract (load_runner.h), summary and errors
// included. Before anything is written it fails with InvalidArgument naming what is
// wrong: both transforms, a transform without output_columns or output_columns without
// one, sources or a query in `options.load`, a generator without a name or columns, a key
// not among the columns, and everything ValidateLoadOptions refuses.
// The transform runs on a thread of its own, one chunk at a time, in read order: it need
// not be thread-safe, but must not touch what the calling thread changes meanwhile.
// `stops` and `io` are RunLoad's. Not thread-safe with itself on the same source.
Result<LoadSummary> RunPipeline(PipelineSource source, const PipelineOptions& options,
                                const LoadStops& stops = {}, LoadIo io = {});

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_PIPELINE_H_
