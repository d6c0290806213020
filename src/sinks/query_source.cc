#include "sinks/query_source.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <utility>

#include "core/fnv1a.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_dsn.h"
#include "sqlite/sqlite.h"

namespace forklift::sinks {
namespace {

Error FromError(const QuerySpec& spec, const Error& e) {
  return Error{e.code,
               MaskSecret(fmt::format("--from {}: --query: {}", spec.from.display, e.message),
                          spec.from.password)};
}

Result<std::unique_ptr<PgConnection>> ConnectFrom(const QuerySpec& spec) {
  auto conn =
      PgConnection::Connect(PgDsn{.conninfo = spec.from.conninfo, .password = spec.from.password});
  if (!conn) {
    return MakeError(conn.error().code,
                     MaskSecret("--from: " + conn.error().message, spec.from.password));
  }
  // The text forms the target reads back: ISO dates, floats exact (shortest form).
  FORKLIFT_RETURN_IF_ERROR(
      (*conn)->Exec("SET DateStyle = ISO, YMD; SET IntervalStyle = postgres; "
                    "SET extra_float_digits = 1"));
  return std::move(*conn);
}

std::string Col(const std::string& name) { return "forklift_q." + QuoteIdent(name); }

// ORDER BY and the comparison of the resume key: "forklift_q."a", forklift_q."b"".
std::string KeyList(const QuerySpec& spec) {
  std::string out;
  for (const std::string& k : spec.resume_key) {
    if (!out.empty()) out += ", ";
    out += Col(k);
  }
  return out;
}

const QueryColumn* FindColumn(const std::vector<QueryColumn>& columns, const std::string& name) {
  for (const QueryColumn& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Status CheckColumns(const QuerySpec& spec, const std::vector<QueryColumn>& columns) {
  if (columns.empty()) {
    return InvalidArgumentError(
        fmt::format("--from {}: --query returns no columns: nothing "
                    "to load",
                    spec.from.display));
  }
  std::set<std::string> seen;
  for (const QueryColumn& c : columns) {
    if (!seen.insert(c.name).second) {
      return InvalidArgumentError(
          fmt::format("--from {}: --query returns two columns named '{}': name them apart "
                      "(AS ...), each becomes a column of the table",
                      spec.from.display, c.name));
    }
  }
  return {};
}

// ---- PostgreSQL ------------------------------------------------------------------------

Result<std::vector<QueryColumn>> DescribePg(const QuerySpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, ConnectFrom(spec));
  auto described = conn->DescribeQuery(NormalizeQuery(spec.query));
  if (!described) return tl::unexpected(FromError(spec, described.error()));
  std::string oids = "{", mods = "{";
  for (const auto& c : *described) {
    if (oids.size() > 1) {
      oids += ',';
      mods += ',';
    }
    oids += std::to_string(c.type_oid);
    mods += std::to_string(c.typmod);
  }
  const std::optional<std::string> params[] = {oids + "}", mods + "}"};
  auto types = conn->Query(
      "SELECT format_type(o, CASE WHEN m < 0 THEN NULL ELSE m END) FROM "
      "unnest($1::oid[], $2::int[]) WITH ORDINALITY AS t(o, m, i) ORDER BY i",
      params);
  if (!types) return tl::unexpected(FromError(spec, types.error()));
  std::vector<QueryColumn> out;
  for (size_t i = 0; i < described->size(); ++i) {
    out.push_back({.name = (*described)[i].name,
                   .type = i < types->size() ? (*types)[i][0].value_or("text") : "text"});
  }
  return out;
}

// One partition's COPY TO STDOUT, handed to the CSV reader a piece at a time.
class PgStream {
 public:
  // A stop on `force` cancels the statement running (PQcancel is thread-safe), from the
  // start: a query the server computes before its first row blocks even BeginCopyOut.
  PgStream(std::unique_ptr<PgConnection> conn, const std::stop_token& force)
      : conn_(std::move(conn)) {
    on_force_.emplace(force, [this] { conn_->Cancel(); });
  }

  PgConnection& conn() { return *conn_; }

  Result<size_t> Pull(char* buf, size_t n) {
    size_t filled = 0;
    while (filled < n) {
      if (pos_ == piece_.size()) {
        if (done_) break;
        FORKLIFT_ASSIGN_OR_RETURN(std::optional<std::string_view> next, conn_->GetCopyData());
        if (!next) {
          done_ = true;
          break;
        }
        piece_ = *next;
        pos_ = 0;
        // Hand over what we have rather than wait for the server's next row.
        if (filled > 0 && piece_.size() > n - filled) break;
      }
      const size_t k = std::min(n - filled, piece_.size() - pos_);
      std::copy_n(piece_.data() + pos_, k, buf + filled);
      pos_ += k;
      filled += k;
    }
    return filled;
  }

 private:
  std::unique_ptr<PgConnection> conn_;
  std::optional<std::stop_callback<std::function<void()>>> on_force_;  // ends before conn_
  std::string_view piece_;  // GetCopyData's, valid until its next call
  size_t pos_ = 0;
  bool done_ = false;
};

Result<std::unique_ptr<sources::ByteSource>> OpenPgStream(
    const QuerySpec& spec, const std::vector<QueryColumn>& columns, int partition,
    const std::vector<std::string>& after, const std::string& name, const std::stop_token& force) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> connected, ConnectFrom(spec));
  auto stream = std::make_shared<PgStream>(std::move(connected), force);
  PgConnection* conn = &stream->conn();
  // The values travel as bound parameters; the COPY reads them back with current_setting
  // (COPY takes no parameters).
  auto set = [&](const std::string& setting, const std::string& value) -> Status {
    const std::optional<std::string> p[] = {setting, value};
    auto done = conn->Query("SELECT set_config($1, $2, false)", p);
    if (!done) return tl::unexpected(FromError(spec, done.error()));
    return {};
  };
  for (size_t i = 0; i < after.size(); ++i) {
    FORKLIFT_RETURN_IF_ERROR(set(fmt::format("forklift.after_{}", i + 1), after[i]));
  }
  for (size_t i = 0; i < spec.range_bounds.size(); ++i) {
    FORKLIFT_RETURN_IF_ERROR(set(fmt::format("forklift.bound_{}", i + 1), spec.range_bounds[i]));
  }
  Status st = conn->BeginCopyOut(PgQueryCopySql(spec, columns, partition, !after.empty()));
  if (!st) return tl::unexpected(FromError(spec, st.error()));
  return sources::ByteSource::FromPull(
      name, [stream](char* buf, size_t n) { return stream->Pull(buf, n); });
}

// ---- SQLite ----------------------------------------------------------------------------

void PartitionFunction(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const int64_t n = sqlite3_value_int64(argv[1]);
  if (n < 1) {
    sqlite3_result_error(ctx, "forklift_partition: partitions must be >= 1", -1);
    return;
  }
  std::string_view text;
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    text = std::string_view(p ? p : "", static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  }
  core::Fnv1a h;
  h.Add(text);
  sqlite3_result_int64(ctx, static_cast<int64_t>(h.value() % static_cast<uint64_t>(n)));
}

Result<sqlite::Db> OpenSqliteFrom(const QuerySpec& spec) {
  auto db = sqlite::Db::Open(
      spec.from.conninfo,
      {.flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, .label = spec.from.display});
  if (!db) {
    return MakeError(db.error().code, fmt::format("--from {}: cannot open: {}", spec.from.display,
                                                  db.error().message));
  }
  if (sqlite3_create_function(db->get(), "forklift_partition", 2,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, PartitionFunction,
                              nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(db->LastError("register forklift_partition"));
  }
  return db;
}

Result<std::vector<QueryColumn>> DescribeSqlite(const QuerySpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenSqliteFrom(spec));
  auto stmt = db.Prepare(NormalizeQuery(spec.query));
  if (!stmt) return tl::unexpected(FromError(spec, stmt.error()));
  std::vector<QueryColumn> out;
  const int n = sqlite3_column_count(stmt->get());
  for (int i = 0; i < n; ++i) {
    const char* type = sqlite3_column_decltype(stmt->get(), i);
    out.push_back({.name = sqlite3_column_name(stmt->get(), i), .type = type ? type : ""});
  }
  return out;
}

// Appends `text` as one CSV field: quoted when it must be (empty text too: an empty
// unquoted field is NULL).
void AppendCsvText(std::string_view text, std::string* out) {
  const bool quote = text.empty() || text.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) {
    out->append(text);
    return;
  }
  out->push_back('"');
  for (char c : text) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

// One partition's statement, stepped a row at a time into CSV records.
class SqliteStream {
 public:
  SqliteStream(sqlite::Db db, sqlite::Statement stmt)
      : db_(std::move(db)), stmt_(std::move(stmt)) {}

  // A stop on `force` interrupts the statement (sqlite3_interrupt is thread-safe).
  void CancelOn(const std::stop_token& force) {
    on_force_.emplace(force, [this] { db_.Interrupt(); });
  }

  // The header record, first in the stream.
  void Header() {
    const int n = sqlite3_column_count(stmt_.get());
    for (int i = 0; i < n; ++i) {
      if (i > 0) pending_.push_back(',');
      AppendCsvText(sqlite3_column_name(stmt_.get(), i), &pending_);
    }
    pending_.push_back('\n');
  }

  Result<size_t> Pull(char* buf, size_t n) {
    while (pending_.size() - pos_ < n && !done_) {
      if (pos_ > 0) {
        pending_.erase(0, pos_);
        pos_ = 0;
      }
      const int rc = sqlite3_step(stmt_.get());
      if (rc == SQLITE_DONE) {
        done_ = true;
        break;
      }
      if (rc != SQLITE_ROW) return tl::unexpected(db_.LastError("step the query"));
      AppendRow();
    }
    const size_t k = std::min(n, pending_.size() - pos_);
    std::copy_n(pending_.data() + pos_, k, buf);
    pos_ += k;
    if (pos_ == pending_.size()) {
      pending_.clear();
      pos_ = 0;
    }
    return k;
  }

 private:
  void AppendRow() {
    sqlite3_stmt* s = stmt_.get();
    const int n = sqlite3_column_count(s);
    for (int i = 0; i < n; ++i) {
      if (i > 0) pending_.push_back(',');
      switch (sqlite3_column_type(s, i)) {
        case SQLITE_NULL: break;  // an empty unquoted field
        case SQLITE_INTEGER:
          fmt::format_to(std::back_inserter(pending_), "{}", sqlite3_column_int64(s, i));
          break;
        case SQLITE_FLOAT:  // the shortest text that reads back to the same double
          fmt::format_to(std::back_inserter(pending_), "{}", sqlite3_column_double(s, i));
          break;
        case SQLITE_BLOB: {
          const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s, i));
          const int len = sqlite3_column_bytes(s, i);
          pending_ += "\\x";
          for (int j = 0; j < len; ++j)
            fmt::format_to(std::back_inserter(pending_), "{:02x}", p[j]);
          break;
        }
        default: {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
          AppendCsvText(
              std::string_view(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(s, i))),
              &pending_);
        }
      }
    }
    pending_.push_back('\n');
  }

  sqlite::Db db_;
  sqlite::Statement stmt_;
  std::optional<std::stop_callback<std::function<void()>>> on_force_;  // ends before db_
  std::string pending_;  // CSV not yet handed out, from pos_
  size_t pos_ = 0;
  bool done_ = false;
};

Result<std::unique_ptr<sources::ByteSource>> OpenSqliteStream(const QuerySpec& spec, int partition,
                                                              const std::vector<std::string>& after,
                                                              const std::string& name,
                                                              const std::stop_token& force) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenSqliteFrom(spec));
  auto stmt = db.Prepare(SqliteQuerySql(spec, partition, !after.empty()));
  if (!stmt) return tl::unexpected(FromError(spec, stmt.error()));
  for (size_t i = 0; i < after.size(); ++i) {
    // SQLite orders every number before every text: a key that reads as a number binds as
    // one, so that an integer column computed without affinity compares as it sorts.
    const std::string& v = after[i];
    const int at = static_cast<int>(i + 1);
    int64_t iv = 0;
    double dv = 0;
    const char* end = v.data() + v.size();
    int rc;
    if (!v.empty() && std::from_chars(v.data(), end, iv).ptr == end) {
      rc = sqlite3_bind_int64(stmt->get(), at, iv);
    } else if (!v.empty() && std::from_chars(v.data(), end, dv).ptr == end) {
      rc = sqlite3_bind_double(stmt->get(), at, dv);
    } else {
      rc = sqlite3_bind_text(stmt->get(), at, v.data(), static_cast<int>(v.size()),
                             SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) return tl::unexpected(db.LastError("bind the resume key"));
  }
  for (size_t i = 0; i < spec.range_bounds.size(); ++i) {  // integers (ComputeRangeBounds)
    const std::string& v = spec.range_bounds[i];
    int64_t b = 0;
    const char* end = v.data() + v.size();
    if (v.empty() || std::from_chars(v.data(), end, b).ptr != end) {
      return InvalidArgumentError(fmt::format(
          "--partition-by {}: range bound '{}' is not an integer", spec.partition_by, v));
    }
    const int at = sqlite3_bind_parameter_index(
        stmt->get(), fmt::format("?{}", spec.resume_key.size() + i + 1).c_str());
    if (at == 0) continue;  // this partition's range does not use it
    if (sqlite3_bind_int64(stmt->get(), at, b) != SQLITE_OK) {
      return tl::unexpected(db.LastError("bind a range bound"));
    }
  }
  auto stream = std::make_shared<SqliteStream>(std::move(db), std::move(*stmt));
  stream->CancelOn(force);
  stream->Header();
  return sources::ByteSource::FromPull(
      name, [stream](char* buf, size_t n) { return stream->Pull(buf, n); });
}

// WHERE ... ORDER BY ... of both dialects; `after_value(i)` spells the i-th key value.
template <typename AfterValue>
std::string Wrapped(const QuerySpec& spec, std::string_view partition_cond, bool after,
                    AfterValue after_value) {
  std::string sql = fmt::format("SELECT * FROM ({}) AS forklift_q", NormalizeQuery(spec.query));
  std::vector<std::string> conds;
  if (!partition_cond.empty()) conds.emplace_back(partition_cond);
  if (after && !spec.resume_key.empty()) {
    std::string values;
    for (size_t i = 0; i < spec.resume_key.size(); ++i) {
      if (i > 0) values += ", ";
      values += after_value(i);
    }
    conds.push_back(fmt::format("({}) > ({})", KeyList(spec), values));
  }
  if (!conds.empty()) sql += fmt::format(" WHERE {}", fmt::join(conds, " AND "));
  if (!spec.resume_key.empty()) sql += " ORDER BY " + KeyList(spec);
  return sql;
}

}  // namespace

std::string NormalizeQuery(std::string_view query) {
  while (!query.empty()) {
    const char c = query.back();
    if (c != ';' && c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    query.remove_suffix(1);
  }
  return std::string(query);
}

namespace {

// Partition `partition`'s range of spec.partition_by; `bound(i)` spells b(i), 1-based.
// Partition 0 also holds NULL; the last, everything from its bound up (on SQLite, where a
// column may hold values of any type, text and blobs sort after every number: there).
template <typename Bound>
std::string RangeCondition(const QuerySpec& spec, int partition, Bound bound) {
  const int nb = static_cast<int>(spec.range_bounds.size());
  const std::string c = Col(spec.partition_by);
  if (partition == 0) return fmt::format("({} < {} OR {} IS NULL)", c, bound(1), c);
  if (partition == nb) return fmt::format("{} >= {}", c, bound(partition));
  return fmt::format("{} >= {} AND {} < {}", c, bound(partition), c, bound(partition + 1));
}

bool IsTimestampType(std::string_view type) {
  return type.starts_with("timestamp") &&
         (type.ends_with(" without time zone") || type.ends_with(" with time zone"));
}

// b(i) = lo + floor((hi - lo + 1) * i / n) for i in 1..n-1, without overflow: with
// d = hi - lo, (d + 1) * i / n = (d / n) * i + ((d % n + 1) * i) / n, in unsigned 64 bits.
std::vector<std::string> IntegerBounds(int64_t lo, int64_t hi, int n) {
  std::vector<std::string> out;
  const uint64_t d = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  const auto un = static_cast<uint64_t>(n);
  for (uint64_t i = 1; i < un; ++i) {
    const uint64_t offset = (d / un) * i + ((d % un + 1) * i) / un;
    out.push_back(std::to_string(static_cast<int64_t>(static_cast<uint64_t>(lo) + offset)));
  }
  return out;
}

Result<std::vector<std::string>> SqliteRangeBounds(const QuerySpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenSqliteFrom(spec));
  // Integers only: a column of INTEGER affinity may still hold text, reals or blobs, which
  // the ranges place (by SQLite's order) but which do not set them.
  const std::string c = QuoteIdent(spec.partition_by);
  auto stmt = db.Prepare(
      fmt::format("SELECT min(forklift_q.{c}), max(forklift_q.{c}) FROM ({q}) AS forklift_q WHERE "
                  "typeof(forklift_q.{c}) = 'integer'",
                  fmt::arg("c", c), fmt::arg("q", NormalizeQuery(spec.query))));
  if (!stmt) return tl::unexpected(FromError(spec, stmt.error()));
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) {
    return tl::unexpected(FromError(spec, db.LastError("read the partition column's min and max")));
  }
  if (sqlite3_column_type(stmt->get(), 0) == SQLITE_NULL) return std::vector<std::string>{};
  return IntegerBounds(sqlite3_column_int64(stmt->get(), 0), sqlite3_column_int64(stmt->get(), 1),
                       spec.partitions);
}

}  // namespace

std::string PgQueryCopySql(const QuerySpec& spec, const std::vector<QueryColumn>& columns,
                           int partition, bool after) {
  std::string part;
  const QueryColumn* by = FindColumn(columns, spec.partition_by);
  auto bound = [&](int i) {  // b(i), 1-based, as the column's type
    return fmt::format("current_setting('forklift.bound_{}')::{}", i,
                       by && !by->type.empty() ? by->type : "text");
  };
  if (spec.partitions > 1 && spec.range_bounds.size() == static_cast<size_t>(spec.partitions - 1)) {
    part = RangeCondition(spec, partition, bound);
  } else if (spec.partitions > 1) {
    part = fmt::format("(mod(hashtextextended(coalesce({}::text, ''), 0), {}) + {}) % {} = {}",
                       Col(spec.partition_by), spec.partitions, spec.partitions, spec.partitions,
                       partition);
  }
  const std::string select = Wrapped(spec, part, after, [&](size_t i) {
    const QueryColumn* c = FindColumn(columns, spec.resume_key[i]);
    return fmt::format("current_setting('forklift.after_{}')::{}", i + 1,
                       c && !c->type.empty() ? c->type : "text");
  });
  return fmt::format("COPY ({}) TO STDOUT (FORMAT csv, HEADER)", select);
}

std::string SqliteQuerySql(const QuerySpec& spec, int partition, bool after) {
  std::string part;
  if (spec.partitions > 1 && spec.range_bounds.size() == static_cast<size_t>(spec.partitions - 1)) {
    // After the resume key's ?1..?k (a named parameter would take the next free number).
    const size_t keys = spec.resume_key.size();
    part = RangeCondition(spec, partition, [keys](int i) {
      return fmt::format("?{}", keys + static_cast<size_t>(i));
    });
  } else if (spec.partitions > 1) {
    part = fmt::format("forklift_partition({}, {}) = {}", Col(spec.partition_by), spec.partitions,
                       partition);
  }
  return Wrapped(spec, part, after, [](size_t i) { return fmt::format("?{}", i + 1); });
}

bool IsRangeType(std::string_view type) {
  return type == "smallint" || type == "integer" || type == "bigint" || type == "date" ||
         IsTimestampType(type);
}

bool IsSqliteRangeType(std::string_view declared) {
  std::string upper(declared);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return upper.find("INT") != std::string::npos;
}

bool IsRangeColumn(const QuerySpec& spec, const std::vector<QueryColumn>& columns) {
  const QueryColumn* by = FindColumn(columns, spec.partition_by);
  if (!by || spec.partitions < 2) return false;
  return spec.from.kind == TargetAddress::Kind::kSqlite ? IsSqliteRangeType(by->type)
                                                        : IsRangeType(by->type);
}

Result<std::vector<std::string>> ComputeRangeBounds(const QuerySpec& spec,
                                                    const std::vector<QueryColumn>& columns) {
  const QueryColumn* by = FindColumn(columns, spec.partition_by);
  if (!IsRangeColumn(spec, columns)) {
    return InvalidArgumentError(fmt::format(
        "--partition-by {}: not an integer, date or timestamp column of the result (SQLite: "
        "not a column of INTEGER affinity)",
        spec.partition_by));
  }
  if (spec.from.kind == TargetAddress::Kind::kSqlite) return SqliteRangeBounds(spec);
  // Equal widths over [min, max]: b(i) = min + floor((max - min + 1) * i / n); timestamps
  // min + (max - min) * i / n, in seconds (an interval of time alone: no day or DST
  // arithmetic), as the column's type (its precision) spells it.
  const bool date = by->type == "date";
  const bool ts = IsTimestampType(by->type);
  const std::string bound =
      ts ? fmt::format(
               "(m.lo + make_interval(secs => extract(epoch from (m.hi - m.lo))::float8 "
               "* i / {}))::{}",
               spec.partitions, by->type)
         : fmt::format("m.lo + floor((m.hi - m.lo + 1)::numeric * i / {})::{}", spec.partitions,
                       date ? "int" : "bigint");
  const std::string sql = fmt::format(
      "SELECT ({bound})::text FROM "
      "(SELECT min(forklift_q.{c}){cast} AS lo, max(forklift_q.{c}){cast} AS hi FROM ({q}) AS "
      "forklift_q) m, generate_series(1, {n} - 1) i WHERE m.lo IS NOT NULL ORDER BY i",
      fmt::arg("n", spec.partitions), fmt::arg("bound", bound),
      fmt::arg("c", QuoteIdent(spec.partition_by)), fmt::arg("cast", date || ts ? "" : "::bigint"),
      fmt::arg("q", NormalizeQuery(spec.query)));
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, ConnectFrom(spec));
  auto rows = conn->Query(sql);
  if (!rows) return tl::unexpected(FromError(spec, rows.error()));
  std::vector<std::string> out;
  for (const auto& r : *rows) out.push_back(r[0].value_or(""));
  return out;
}

Result<std::vector<QueryColumn>> DescribeQuery(const QuerySpec& spec) {
  std::vector<QueryColumn> columns;
  if (spec.from.kind == TargetAddress::Kind::kSqlite) {
    FORKLIFT_ASSIGN_OR_RETURN(columns, DescribeSqlite(spec));
  } else {
    FORKLIFT_ASSIGN_OR_RETURN(columns, DescribePg(spec));
  }
  FORKLIFT_RETURN_IF_ERROR(CheckColumns(spec, columns));
  return columns;
}

Result<std::unique_ptr<sources::ByteSource>> OpenQueryStream(
    const QuerySpec& spec, const std::vector<QueryColumn>& columns, int partition,
    const std::vector<std::string>& after, const std::string& name, const std::stop_token& force) {
  if (spec.from.kind == TargetAddress::Kind::kSqlite) {
    return OpenSqliteStream(spec, partition, after, name, force);
  }
  return OpenPgStream(spec, columns, partition, after, name, force);
}

}  // namespace forklift::sinks
