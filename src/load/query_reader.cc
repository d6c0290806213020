#include "load/query_reader.h"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <optional>
#include <set>
#include <thread>
#include <utility>

namespace forklift::load {
namespace {

// One partition's stream, on the thread that reads it.
class PartitionReader {
 public:
  PartitionReader(const QueryReadPlan& plan, int partition, ReadCounters* counters,
                  const QueryReadHooks& hooks, std::function<bool()> stop)
      : plan_(plan),
        p_(partition),
        n_(plan.spec.partitions < 1 ? 1 : plan.spec.partitions),
        resume_(plan.resume[static_cast<size_t>(partition)]),
        counters_(counters),
        hooks_(hooks),
        stop_(std::move(stop)),
        name_(QuerySourceName(partition, n_) + RangeSourceSuffix(plan.spec)),
        next_number_(resume_.next_number) {
    for (const std::string& k : plan.spec.resume_key) {
      if (!key_names_.empty()) key_names_ += ',';
      key_names_ += k;
    }
  }

  Status Run() {
    // A forced stop interrupts a query the server is still computing: a read blocked on it
    // would otherwise hold the load up.
    FORKLIFT_ASSIGN_OR_RETURN(
        auto source,
        sinks::OpenQueryStream(plan_.spec, plan_.columns, p_, resume_.after, name_, hooks_.force));
    ChunkerOptions options = plan_.chunker;
    options.header = true;
    options.header_names.clear();
    for (const auto& c : plan_.columns) options.header_names.push_back(c.name);
    options.fold_header_case = false;
    Chunker chunker(std::move(options), counters_);
    auto emit = [this](sinks::Chunk&& chunk) { return Emit(std::move(chunk)); };
    FORKLIFT_RETURN_IF_ERROR(chunker.ReadSource(name_, std::move(source), emit, stop_));
    if (stop_()) return {};  // what was held back never committed: the rerun reads it
    if (held_) hooks_.push(std::move(*held_));
    held_.reset();
    for (const auto& [number, e] : resume_.beyond) {
      if (seen_.count(number)) continue;
      return FailedPreconditionError(fmt::format(
          "{}: the query's result changed since load committed chunk {} (lines {}-{}, {} "
          "rows): the result now ends before it; not resuming",
          name_, number, e.first_line, e.last_line, e.rows));
    }
    return {};
  }

 private:
  Status Emit(sinks::Chunk&& chunk) {
    chunk.number = next_number_;
    next_number_ += n_;
    if (resume_.line_offset > 0) {
      chunk.first_line += resume_.line_offset;
      chunk.last_line += resume_.line_offset;
      for (auto& r : chunk.rows) r.line += resume_.line_offset;
      for (auto& r : chunk.parse_rejects) r.line += resume_.line_offset;
    }
    if (!plan_.resume_fields.empty()) {
      if (!chunk.rows.empty()) {
        FORKLIFT_ASSIGN_OR_RETURN(auto first, RowKey(chunk, 0, plan_.resume_fields, key_names_));
        FORKLIFT_ASSIGN_OR_RETURN(
            auto last, RowKey(chunk, chunk.rows.size() - 1, plan_.resume_fields, key_names_));
        if (last_key_ && *last_key_ == first) {
          return InvalidArgumentError(fmt::format(
              "--resume-key {}: not unique in the query's result: the key ({}) ends chunk {} "
              "and starts chunk {} ({} line {}), and resuming after it would skip rows: name a "
              "unique key (add columns to it). Chunk {} was not committed",
              key_names_, fmt::join(first, ","), chunk.number - n_, chunk.number, name_,
              chunk.first_line, chunk.number - n_));
        }
        last_key_ = std::move(last);
      }
      if (last_key_) chunk.last_key = EncodeKey(*last_key_);
    }
    if (hooks_.chunk_read) hooks_.chunk_read(chunk);
    if (auto it = resume_.beyond.find(chunk.number); it != resume_.beyond.end()) {
      const sinks::LedgerEntry& e = it->second;
      seen_.insert(chunk.number);
      if (e.checksum != chunk.checksum || e.first_line != static_cast<int64_t>(chunk.first_line) ||
          e.last_line != static_cast<int64_t>(chunk.last_line)) {
        return FailedPreconditionError(fmt::format(
            "{}: the query's result changed since load committed chunk {} (lines {}-{}, "
            "checksum {}; now lines {}-{}, checksum {}): not resuming",
            name_, chunk.number, e.first_line, e.last_line, e.checksum, chunk.first_line,
            chunk.last_line, chunk.checksum));
      }
      Release();
      hooks_.skipped(e);
      return {};
    }
    if (plan_.resume_fields.empty()) {
      hooks_.push(std::move(chunk));
      return {};
    }
    Release();
    held_ = std::move(chunk);
    return {};
  }

  // Hands on the chunk held back: the one after it did not start with its last key.
  void Release() {
    if (held_) hooks_.push(std::move(*held_));
    held_.reset();
  }

  const QueryReadPlan& plan_;
  const int p_;
  const int n_;
  const PartitionResume& resume_;
  ReadCounters* counters_;
  const QueryReadHooks& hooks_;
  std::function<bool()> stop_;
  std::string name_;
  std::string key_names_;
  int64_t next_number_;
  std::optional<std::vector<std::string>> last_key_;
  std::optional<sinks::Chunk> held_;
  std::set<int64_t> seen_;
};

}  // namespace

std::string QuerySourceName(int partition, int partitions) {
  if (partitions <= 1) return "query";
  return fmt::format("query partition {}/{}", partition + 1, partitions);
}

std::string RangeSourceSuffix(const sinks::QuerySpec& spec) {
  if (spec.range_bounds.empty()) return "";
  return fmt::format(" of {} at {}", spec.partition_by, fmt::join(spec.range_bounds, ","));
}

std::optional<std::vector<std::string>> RangeBoundsOf(std::string_view source) {
  const size_t at = source.rfind(" at ");
  if (!source.starts_with("query partition ") || at == std::string_view::npos) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  std::string_view rest = source.substr(at + 4);
  for (size_t pos = 0;;) {
    const size_t comma = rest.find(',', pos);
    out.emplace_back(rest.substr(pos, comma == std::string_view::npos ? rest.npos : comma - pos));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

Status ReadQuery(const QueryReadPlan& plan, ReadCounters* counters, const QueryReadHooks& hooks) {
  const int n = plan.spec.partitions < 1 ? 1 : plan.spec.partitions;
  if (plan.resume.size() != static_cast<size_t>(n)) {
    return InternalError("ReadQuery: one PartitionResume per partition expected");
  }
  std::atomic<bool> failed{false};
  auto stop = [&] { return failed.load() || (hooks.stop && hooks.stop()); };
  std::vector<Status> results(static_cast<size_t>(n));
  auto run = [&](int p) {
    Status st;
    try {
      PartitionReader reader(plan, p, counters, hooks, stop);
      st = reader.Run();
    } catch (const std::exception& e) {
      st = InternalError(
          fmt::format("reading {}: stopped by an exception: {}", QuerySourceName(p, n), e.what()));
    }
    if (!st) failed.store(true);
    results[static_cast<size_t>(p)] = std::move(st);
  };
  {
    std::vector<std::jthread> threads;
    for (int p = 1; p < n; ++p) threads.emplace_back(run, p);
    run(0);
  }
  // The first failure that is not the others' reaction to it.
  for (const Status& st : results) {
    if (!st) return st;
  }
  return {};
}

}  // namespace forklift::load
