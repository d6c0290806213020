#include "sinks/pg_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <xxhash.h>

#include "sinks/pg_binary.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_dsn.h"
#include "sinks/pg_ledger.h"
#include "sinks/pg_table.h"

namespace forklift::sinks {
namespace {

constexpr const char* kStage = "pg_temp.forklift_stage";
constexpr const char* kOrd = "forklift_ord";
// After this many rows narrowed out of one subset by their COPY line, bisect instead: a
// chunk of bad rows costs O(log n) round trips each, not O(n) resends.
constexpr int kMaxLineRetries = 16;

std::string ColumnList(const std::vector<std::string>& cols, std::string_view prefix = "") {
  std::string out;
  for (const std::string& c : cols) {
    if (!out.empty()) out += ", ";
    out += std::string(prefix) + QuoteIdent(c);
  }
  return out;
}

// `cols` for an upsert's "would this row change" test: a type with no fit `=` compares as
// text (PgTableInfo::compare_as_text; `compare_as_text` is indexed like `all`).
std::string CompareList(const std::vector<std::string>& cols, std::string_view prefix,
                        const std::vector<std::string>& all,
                        const std::vector<bool>& compare_as_text) {
  std::string out;
  for (const std::string& c : cols) {
    const size_t i = static_cast<size_t>(std::find(all.begin(), all.end(), c) - all.begin());
    if (!out.empty()) out += ", ";
    out += std::string(prefix) + QuoteIdent(c) + (compare_as_text[i] ? "::text" : "");
  }
  return out;
}

// Errors about a row's data: the row goes to the dead letters, the rest of the chunk loads.
// Anything else (no such column, permissions, a lost connection) is about the load.
bool IsRowLevel(const PgError& e) {
  return !e.connection_lost && e.sqlstate.size() == 5 &&
         (e.sqlstate.starts_with("22") || e.sqlstate.starts_with("23") || e.sqlstate == "P0001");
}

std::string RowReason(const PgError& e) {
  std::string r = e.message;
  if (!e.detail.empty()) r += " (" + e.detail + ")";
  return r;
}

class PgSink final : public Sink {
 public:
  PgSink(TargetAddress address, TableSpec spec, const PgTableInfo& table)
      : address_(std::move(address)),
        spec_(std::move(spec)),
        staged_(spec_.upsert || spec_.ignore_duplicates),
        encoder_(table.types, staged_, spec_.delimiter, spec_.null_string),
        unique_key_(table.unique_key) {
    const std::string table_sql = QuoteQualified(spec_.schema, spec_.table);
    const std::string options =
        fmt::format("(FORMAT csv, DELIMITER {}, NULL {})",
                    QuoteLiteral(std::string(1, spec_.delimiter)), QuoteLiteral(spec_.null_string));
    if (!staged_) {
      copy_sql_ =
          fmt::format("COPY {} ({}) FROM STDIN {}", table_sql, ColumnList(spec_.columns), options);
      copy_bin_sql_ = fmt::format("COPY {} ({}) FROM STDIN (FORMAT binary)", table_sql,
                                  ColumnList(spec_.columns));
      copy_text_sql_ = fmt::format("COPY {} ({}) FROM STDIN (FORMAT text)", table_sql,
                                   ColumnList(spec_.columns));
    } else {
      copy_sql_ = fmt::format("COPY {} ({}, {}) FROM STDIN {}", kStage, kOrd,
                              ColumnList(spec_.columns), options);
      copy_bin_sql_ = fmt::format("COPY {} ({}, {}) FROM STDIN (FORMAT binary)", kStage, kOrd,
                                  ColumnList(spec_.columns));
      copy_text_sql_ = fmt::format("COPY {} ({}, {}) FROM STDIN (FORMAT text)", kStage, kOrd,
                                   ColumnList(spec_.columns));
      stage_sql_ = fmt::format(
          "CREATE TEMP TABLE IF NOT EXISTS forklift_stage ON COMMIT DELETE ROWS AS "
          "SELECT {}, 0::bigint AS {} FROM {} WITH NO DATA",
          ColumnList(spec_.columns), kOrd, table_sql);
    }
    if (spec_.ignore_duplicates) {
      // --mode insert-ignore: rows in input order; one that breaks any unique index or
      // constraint (of the table, or of an earlier row of the chunk) is skipped. Both
      // counts are the rows inserted: Apply reads them as (inserted, inserted + updated).
      apply_sql_ = fmt::format(
          "WITH forklift_applied AS (INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {} ON "
          "CONFLICT DO NOTHING RETURNING 1) SELECT count(*), count(*) FROM forklift_applied",
          table_sql, ColumnList(spec_.columns), ColumnList(spec_.columns), kStage, kOrd);
    } else if (spec_.upsert) {
      std::vector<std::string> rest;
      for (const std::string& c : spec_.columns) {
        if (std::find(spec_.key.begin(), spec_.key.end(), c) == spec_.key.end()) rest.push_back(c);
      }
      std::string action = "DO NOTHING";
      if (!rest.empty()) {
        std::string sets;
        for (const std::string& c : rest) {
          sets += fmt::format("{}{} = EXCLUDED.{}", sets.empty() ? "" : ", ", QuoteIdent(c),
                              QuoteIdent(c));
        }
        // A row that would not change is left as it is: a rerun of the same data writes
        // no new row versions (no WAL, no bloat), only the conflict's row lock.
        action = fmt::format("DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})", sets,
                             CompareList(rest, "forklift_t.", spec_.columns, table.compare_as_text),
                             CompareList(rest, "EXCLUDED.", spec_.columns, table.compare_as_text));
      }
      const std::string keys = ColumnList(spec_.key);
      // DISTINCT ON keeps the last row of a key (highest ord); ORDER BY key also makes every
      // chunk take its row locks in one global order. DISTINCT ON takes NULLs as equal, but
      // a NULLS DISTINCT index lets every row with a NULL in its key in: such rows get their
      // own ord as a discriminator (NULL for the others), so none is dropped.
      std::string distinct = keys;
      if (table.null_keys_distinct) {
        std::string any_null;
        for (const std::string& k : spec_.key) {
          any_null += fmt::format("{}{} IS NULL", any_null.empty() ? "" : " OR ", QuoteIdent(k));
        }
        distinct += fmt::format(", CASE WHEN {} THEN {} END", any_null, kOrd);
      }
      // RETURNING gives the rows inserted or updated (not those the WHERE left alone); a
      // row ON CONFLICT inserted has no xmax, one it updated has the updater's: the summary
      // tells inserted from updated rows.
      apply_sql_ = fmt::format(
          "WITH forklift_applied AS (INSERT INTO {} AS forklift_t ({}) SELECT DISTINCT ON ({}) "
          "{} FROM {} ORDER BY {}, {} DESC ON CONFLICT ({}) {} RETURNING forklift_t.xmax = 0 "
          "AS inserted) SELECT count(*) FILTER (WHERE inserted), count(*) FROM forklift_applied",
          table_sql, ColumnList(spec_.columns), distinct, ColumnList(spec_.columns), kStage,
          distinct, kOrd, keys, action);
      // The fast path for a chunk whose keys are distinct values: try a plain INSERT under a
      // savepoint (new rows cost ~70 % more through ON CONFLICT's speculative insertion);
      // a key that exists fails it with 23505 at once, and the chunk goes through ON
      // CONFLICT. No join, so no plan that stale table statistics could make quadratic.
      // A NULL in a key conflicts here exactly when it would there: the index decides both.
      fast_sql_ = fmt::format(
          "SAVEPOINT forklift_fast; INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}", table_sql,
          ColumnList(spec_.columns), ColumnList(spec_.columns), kStage, keys);
      std::vector<size_t> key_fields;
      for (const std::string& k : spec_.key) {
        key_fields.push_back(static_cast<size_t>(
            std::find(spec_.columns.begin(), spec_.columns.end(), k) - spec_.columns.begin()));
      }
      encoder_.set_key_fields(std::move(key_fields));
    }
    ledger_insert_sql_ = fmt::format(
        "INSERT INTO {} (load_id, chunk, source, first_line, last_line, rows, rejected, "
        "checksum, target_table{}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9{})",
        PgLedgerTable(spec_), spec_.ledger_last_key ? ", last_key" : "",
        spec_.ledger_last_key ? ", $10" : "");
    ledger_find_sql_ = fmt::format("SELECT {} FROM {} WHERE load_id = $1 AND chunk = $2",
                                   kPgLedgerColumns, PgLedgerTable(spec_));
  }

  Status Connect() {
    FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, ConnectPg(address_));
    {
      // Cancel() may run on another thread at any time: never let it see a dying conn.
      std::lock_guard lock(cancel_mu_);
      conn_ = std::move(conn);
    }
    FORKLIFT_RETURN_IF_ERROR(Exec("SET standard_conforming_strings = on"));
    if (staged_) FORKLIFT_RETURN_IF_ERROR(Exec(stage_sql_));
    return {};
  }

  Result<ChunkWriteResult> WriteChunk(const Chunk& chunk,
                                      const BeforeCommit& before_commit) override {
    if (!conn_ || !conn_->ok()) {
      return UnavailableError(fmt::format("--to {}: connection lost", address_.display));
    }
    ChunkWriteResult result;
    std::vector<uint32_t> all(chunk.rows.size());
    std::iota(all.begin(), all.end(), 0u);
    FORKLIFT_RETURN_IF_ERROR(Exec("BEGIN"));
    inserted_ = updated_ = 0;
    Status st = all.empty() ? Status() : Apply(chunk, all, /*narrowing=*/false, /*fast=*/true);
    if (!st) {
      if (!IsRowLevel(conn_->last_error())) return Abort(st.error());
      (void)Exec("ROLLBACK");
      // The rows may be refused as duplicates of an earlier attempt of this very chunk that
      // committed after all (its COMMIT's reply was lost, and it became visible only after
      // our FindChunk): ask the ledger before narrowing every row out as a dead letter.
      FORKLIFT_ASSIGN_OR_RETURN(std::optional<LedgerEntry> earlier, FindChunk(chunk.number));
      if (earlier) return AlreadyCommitted(chunk, *earlier, std::move(result));
      // Start over in a new transaction and narrow the bad rows out under savepoints.
      FORKLIFT_RETURN_IF_ERROR(Exec("BEGIN"));
      inserted_ = updated_ = 0;
      st = Narrow(chunk, std::move(all), &result.rejected);
      if (!st) return Abort(st.error());
      std::sort(result.rejected.begin(), result.rejected.end(),
                [](const RejectedRow& a, const RejectedRow& b) { return a.row < b.row; });
    }
    result.rows_written = static_cast<int64_t>(chunk.rows.size() - result.rejected.size());
    if (spec_.ignore_duplicates) {
      // Of the rows that were not rejected, those ON CONFLICT DO NOTHING skipped.
      result.rows_duplicate = result.rows_written - inserted_;
      result.rows_written = inserted_;
    }
    result.rows_inserted = staged_ ? inserted_ : result.rows_written;
    result.rows_updated = updated_;
    st = before_commit(result.rejected);
    if (!st) return Abort(st.error());
    const std::optional<std::string> params[] = {
        spec_.load_id,
        std::to_string(chunk.number),
        chunk.source,
        std::to_string(chunk.first_line),
        std::to_string(chunk.last_line),
        std::to_string(result.rows_written),
        std::to_string(result.rejected.size() + chunk.parse_rejects.size()),
        chunk.checksum,
        ShownTable(spec_),
        chunk.last_key};
    auto ins =
        conn_->Query(ledger_insert_sql_, std::span(params).first(spec_.ledger_last_key ? 10 : 9));
    if (!ins) {
      if (conn_->last_error().sqlstate != "23505") return Abort(Decorate(ins.error()));
      // The ledger's primary key is taken: another attempt of this chunk committed first
      // (a lost COMMIT reply whose transaction became visible after our FindChunk, or the
      // same load run twice at once). This attempt must not commit.
      (void)Exec("ROLLBACK");
      FORKLIFT_ASSIGN_OR_RETURN(std::optional<LedgerEntry> earlier, FindChunk(chunk.number));
      if (!earlier) {  // deleted in between: nothing is known to be committed, so retry
        return UnavailableError(
            fmt::format("--to {}: chunk {}: its ledger row existed and then did not; retrying",
                        address_.display, chunk.number));
      }
      return AlreadyCommitted(chunk, *earlier, std::move(result));
    }
    FORKLIFT_RETURN_IF_ERROR(Exec("COMMIT"));
    return result;
  }

  Status Reconnect() override { return Connect(); }

  Result<std::optional<LedgerEntry>> FindChunk(int64_t chunk) override {
    const std::optional<std::string> params[] = {spec_.load_id, std::to_string(chunk)};
    auto rows = conn_->Query(ledger_find_sql_, params);
    if (!rows) return tl::unexpected(Decorate(rows.error()));
    if (rows->empty()) return std::optional<LedgerEntry>();
    return std::optional<LedgerEntry>(PgLedgerEntry((*rows)[0]));
  }

  void Cancel() override {
    std::lock_guard lock(cancel_mu_);
    if (conn_) conn_->Cancel();
  }

 private:
  Error Decorate(const Error& e) const { return OnTarget(address_, e); }

  // The result for a chunk that an earlier attempt committed (this attempt rolled back),
  // as that attempt's writer would have had it: the ledger's row count. A ledger entry of
  // other source bytes or lines means the source changed under the same load id.
  Result<ChunkWriteResult> AlreadyCommitted(const Chunk& chunk, const LedgerEntry& earlier,
                                            ChunkWriteResult result) {
    if (earlier.checksum != chunk.checksum ||
        earlier.first_line != static_cast<int64_t>(chunk.first_line) ||
        earlier.last_line != static_cast<int64_t>(chunk.last_line)) {
      return FailedPreconditionError(fmt::format(
          "{}: source changed since load {} committed chunk {} (lines {}-{}, checksum {}; now "
          "lines {}-{}, checksum {})",
          chunk.source, spec_.load_id, chunk.number, earlier.first_line, earlier.last_line,
          earlier.checksum, chunk.first_line, chunk.last_line, chunk.checksum));
    }
    result.rows_written = earlier.rows;
    result.rows_inserted = result.rows_updated = std::nullopt;  // that attempt's, not known
    result.already_committed = true;
    return result;
  }

  Status Exec(std::string_view sql) {
    auto st = conn_->Exec(sql);
    if (!st) return tl::unexpected(Decorate(st.error()));
    return {};
  }

  tl::unexpected<Error> Abort(const Error& e) {
    if (conn_->ok()) (void)conn_->Exec("ROLLBACK");
    return tl::unexpected(e);
  }

  // The COPY statement and data for `rows`, one record per row in order:
  //  - binary, when every value converts exactly (the server parses nothing);
  //  - else, outside narrowing, CSV as read (insert: the chunk's own bytes; upsert: each
  //    record prefixed with its row number, the staging table's ord column);
  //  - else (narrowing) the text format, whose records never span lines: the server's
  //    "line N" is then row N. CSV would not do: a quoted field may hold newlines, and
  //    PostgreSQL 15 counts them in its line numbers only after the first record.
  std::pair<std::string_view, std::string_view> Data(const Chunk& chunk,
                                                     const std::vector<uint32_t>& rows,
                                                     bool narrowing) {
    distinct_keys_ = false;
    if (encoder_.usable()) {
      buf_.clear();
      PgBinaryEncoder::Begin(&buf_);
      const bool want_keys = spec_.upsert && !narrowing && encoder_.keys_canonical();
      key_hashes_.clear();
      bool ok = true;
      for (uint32_t i : rows) {
        key_.clear();
        if (!encoder_.AddRow(chunk.Row(i), i, &buf_, want_keys ? &key_ : nullptr)) {
          ok = false;
          break;
        }
        if (want_keys) key_hashes_.push_back(XXH3_64bits(key_.data(), key_.size()));
      }
      if (ok) {
        PgBinaryEncoder::End(&buf_);
        if (want_keys) {
          // Equal hashes may be a collision, not a repeat: either way the slow path is right.
          std::sort(key_hashes_.begin(), key_hashes_.end());
          distinct_keys_ =
              std::adjacent_find(key_hashes_.begin(), key_hashes_.end()) == key_hashes_.end();
        }
        return {copy_bin_sql_, buf_};
      }
    }
    if (!narrowing && !staged_ && rows.size() == chunk.rows.size()) {
      return {copy_sql_, chunk.data};
    }
    buf_.clear();
    if (narrowing) {
      for (uint32_t i : rows) {
        if (staged_) {
          buf_ += std::to_string(i);
          buf_ += '\t';
        }
        // The chunker only passes well-formed records of the right width.
        (void)sources::SplitCsvRecord(chunk.Row(i), spec_.delimiter, &fields_, &scratch_);
        for (size_t f = 0; f < fields_.size(); ++f) {
          if (f) buf_ += '\t';
          AppendTextField(fields_[f], &buf_);
        }
        buf_ += '\n';
      }
      return {copy_text_sql_, buf_};
    }
    for (uint32_t i : rows) {
      buf_ += std::to_string(i);
      buf_ += spec_.delimiter;
      buf_ += chunk.Row(i);
      buf_ += '\n';
    }
    return {copy_sql_, buf_};
  }

  // One field in COPY's text format, with the CSV NULL rule.
  void AppendTextField(const sources::CsvField& f, std::string* out) const {
    if (!f.quoted && f.value == spec_.null_string) {
      out->append("\\N");
      return;
    }
    for (char c : f.value) {
      switch (c) {
        case '\\': out->append("\\\\"); break;
        case '\t': out->append("\\t"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        default: out->push_back(c);
      }
    }
  }

  // Sends `rows` and applies them; `fast` allows the upsert's optimistic plain INSERT.
  Status Apply(const Chunk& chunk, const std::vector<uint32_t>& rows, bool narrowing,
               bool fast = false) {
    auto [sql, data] = Data(chunk, rows, narrowing);
    auto copied = conn_->CopyIn(sql, data);
    if (!copied) return tl::unexpected(Decorate(copied.error()));
    if (staged_) {
      if (spec_.upsert && fast && distinct_keys_ && unique_key_ && fast_skip_ == 0) {
        Status st = Exec(fast_sql_);
        if (st) {
          fast_backoff_ = 0;
          inserted_ += static_cast<int64_t>(rows.size());  // distinct keys, all new
          return st;
        }
        if (conn_->last_error().sqlstate != "23505") return st;
        // Keys that exist: this target is being updated, so skip the attempt for the next
        // chunks (1, 2, 4 ... 64 of them) before trying again.
        FORKLIFT_RETURN_IF_ERROR(Exec("ROLLBACK TO SAVEPOINT forklift_fast"));
        fast_backoff_ = std::min(64, std::max(1, fast_backoff_ * 2));
        fast_skip_ = fast_backoff_;
      } else if (spec_.upsert && fast && fast_skip_ > 0) {
        --fast_skip_;
      }
      auto applied = conn_->Query(apply_sql_);
      if (!applied) return tl::unexpected(Decorate(applied.error()));
      if (!applied->empty()) {
        const int64_t ins = std::stoll((*applied)[0][0].value_or("0"));
        inserted_ += ins;
        updated_ += std::stoll((*applied)[0][1].value_or("0")) - ins;
      }
      // The staging rows of a subset that went in must not be applied again with the next.
      if (narrowing) FORKLIFT_RETURN_IF_ERROR(Exec(std::string("DELETE FROM ") + kStage));
    }
    return {};
  }

  // Applies `rows` under savepoints, dropping the rows the server refuses for their data:
  // the one its COPY line names, or, when it names none, each half in turn (left first, so
  // input order still decides the last row of a key).
  Status Narrow(const Chunk& chunk, std::vector<uint32_t> rows,
                std::vector<RejectedRow>* rejected) {
    std::vector<std::vector<uint32_t>> todo;
    todo.push_back(std::move(rows));
    while (!todo.empty()) {
      std::vector<uint32_t> s = std::move(todo.back());
      todo.pop_back();
      int line_retries = 0;
      while (!s.empty()) {
        FORKLIFT_RETURN_IF_ERROR(Exec("SAVEPOINT forklift_narrow"));
        Status st = Apply(chunk, s, /*narrowing=*/true);
        if (st) {
          FORKLIFT_RETURN_IF_ERROR(Exec("RELEASE SAVEPOINT forklift_narrow"));
          break;
        }
        const PgError e = conn_->last_error();
        if (!IsRowLevel(e)) return st;
        FORKLIFT_RETURN_IF_ERROR(Exec("ROLLBACK TO SAVEPOINT forklift_narrow"));
        FORKLIFT_RETURN_IF_ERROR(Exec("RELEASE SAVEPOINT forklift_narrow"));
        // Text and binary COPY data hold one row per line: line N is s[N - 1].
        const std::optional<size_t> at = e.copy_line && *e.copy_line >= 1
                                             ? std::optional<size_t>(*e.copy_line - 1)
                                             : std::nullopt;
        if (at && *at < s.size() && line_retries < kMaxLineRetries) {
          rejected->push_back({.row = s[*at], .sqlstate = e.sqlstate, .reason = RowReason(e)});
          s.erase(s.begin() + static_cast<std::ptrdiff_t>(*at));
          ++line_retries;
          continue;
        }
        if (s.size() == 1) {
          rejected->push_back({.row = s[0], .sqlstate = e.sqlstate, .reason = RowReason(e)});
          break;
        }
        const auto mid = s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2);
        todo.emplace_back(mid, s.end());
        todo.emplace_back(s.begin(), mid);
        break;
      }
    }
    return {};
  }

  TargetAddress address_;
  TableSpec spec_;
  std::mutex cancel_mu_;  // guards replacing conn_ against Cancel()
  std::unique_ptr<PgConnection> conn_;
  bool staged_ = false;  // rows go through the staging table (upsert, insert-ignore)
  PgBinaryEncoder encoder_;
  bool unique_key_ = false;     // the table has a unique index on exactly the key
  bool distinct_keys_ = false;  // the last COPY's keys are distinct values
  std::vector<uint64_t> key_hashes_;
  std::string key_;
  std::string fast_sql_;
  int64_t inserted_ = 0;  // this chunk's attempt so far: rows inserted, rows updated
  int64_t updated_ = 0;
  int fast_backoff_ = 0;  // chunks to skip the fast path after its last 23505 (0, 1..64)
  int fast_skip_ = 0;     // of those, still to skip
  std::string copy_sql_, copy_bin_sql_, copy_text_sql_, apply_sql_, stage_sql_, ledger_insert_sql_,
      ledger_find_sql_;
  std::string buf_;
  std::vector<sources::CsvField> fields_;
  std::string scratch_;
};

}  // namespace

Result<std::unique_ptr<PgConnection>> ConnectPg(const TargetAddress& address) {
  auto conn =
      PgConnection::Connect(PgDsn{.conninfo = address.conninfo, .password = address.password});
  if (!conn) {  // the message names the (masked) DSN already
    return MakeError(conn.error().code,
                     MaskSecret("--to: " + conn.error().message, address.password));
  }
  return conn;
}

Result<std::unique_ptr<Sink>> OpenPgSink(const TargetAddress& address, const TableSpec& spec,
                                         const PgTableInfo& table) {
  auto sink = std::make_unique<PgSink>(address, spec, table);
  FORKLIFT_RETURN_IF_ERROR(sink->Connect());
  return std::unique_ptr<Sink>(std::move(sink));
}

}  // namespace forklift::sinks
