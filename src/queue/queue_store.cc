#include "queue/queue_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

namespace forklift::queue {
namespace {

using Params = std::vector<std::optional<std::string>>;

constexpr char kHexDigits[] = "0123456789abcdef";

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHexDigits[c >> 4];
    out += kHexDigits[c & 15];
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2 != 0) return DataLossError("queue: odd-length hex from the server");
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return DataLossError("queue: bad hex from the server");
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

// A PostgreSQL array literal with every element quoted ("a","b\"c").
template <class Range, class Fn>
std::string ArrayLiteral(const Range& values, Fn&& text_of) {
  std::string out = "{";
  bool first = true;
  for (const auto& v : values) {
    if (!first) out += ',';
    first = false;
    out += '"';
    for (char c : std::string(text_of(v))) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string IntArray(const std::vector<int64_t>& values) {
  return ArrayLiteral(values, [](int64_t v) { return std::to_string(v); });
}

Result<int64_t> ToInt(const std::optional<std::string>& v) {
  if (!v) return DataLossError("queue: unexpected NULL from the server");
  try {
    return std::stoll(*v);
  } catch (...) {
    return DataLossError("queue: not a number from the server: " + *v);
  }
}

const char* StatusText(OutcomeStatus s) { return s == OutcomeStatus::kDead ? "dead" : "done"; }

}  // namespace

int64_t Millis(Duration d) {
  return std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

QueueStore::QueueStore(std::unique_ptr<sinks::PgConnection> conn, std::string schema)
    : conn_(std::move(conn)), schema_(std::move(schema)) {}

std::string QueueStore::T(std::string_view table) const {
  return sinks::QuoteIdent(schema_) + "." + std::string(table);
}

Result<std::unique_ptr<QueueStore>> QueueStore::Open(const sinks::PgDsn& dsn, std::string schema) {
  if (schema.empty()) return InvalidArgumentError("--queue-schema: must not be empty");
  FORKLIFT_ASSIGN_OR_RETURN(auto conn, sinks::PgConnection::Connect(dsn));
  std::unique_ptr<QueueStore> store(new QueueStore(std::move(conn), std::move(schema)));
  FORKLIFT_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status QueueStore::Migrate() {
  // The schema's name in the lock key: two queues in one database migrate independently.
  const std::string lock = fmt::format("SELECT pg_advisory_xact_lock(hashtext({}))",
                                       sinks::QuoteLiteral("forklift-queue-schema:" + schema_));
  FORKLIFT_RETURN_IF_ERROR(conn_->Exec("BEGIN"));
  auto body = [&]() -> Status {
    FORKLIFT_RETURN_IF_ERROR(conn_->Exec(lock));
    FORKLIFT_RETURN_IF_ERROR(
        conn_->Exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {0}; "
                                "CREATE TABLE IF NOT EXISTS {1} (version int NOT NULL)",
                                sinks::QuoteIdent(schema_), T("queue_meta"))));
    FORKLIFT_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(fmt::format("SELECT max(version) FROM {}", T("queue_meta"))));
    int version = 0;
    if (!rows.empty() && rows[0][0]) {
      FORKLIFT_ASSIGN_OR_RETURN(int64_t v, ToInt(rows[0][0]));
      version = static_cast<int>(v);
    }
    if (version > kSchemaVersion) {
      return FailedPreconditionError(fmt::format(
          "queue schema '{}' is at version {}, newer than this forklift knows ({}): upgrade "
          "forklift",
          schema_, version, kSchemaVersion));
    }
    if (version < 1) {
      // Version 1. slices, items and outcomes are partitioned by run so that a finished
      // run leaves by DROP TABLE, not by row deletes (no bloat, no vacuum debt).
      FORKLIFT_RETURN_IF_ERROR(conn_->Exec(fmt::format(
          "CREATE SEQUENCE {0}; "
          "CREATE TABLE {1} (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, kind text NOT "
          "NULL, state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'cancelled', "
          "'finished')), max_losses int NOT NULL, created_at timestamptz NOT NULL DEFAULT "
          "clock_timestamp()); "
          "CREATE TABLE {2} (id text PRIMARY KEY, host text NOT NULL, pid int NOT NULL, slots "
          "int NOT NULL, started_at timestamptz NOT NULL DEFAULT clock_timestamp(), last_seen "
          "timestamptz NOT NULL DEFAULT clock_timestamp(), stopped_at timestamptz); "
          "CREATE TABLE {3} (run_id bigint NOT NULL, id bigint NOT NULL, state text NOT NULL "
          "DEFAULT 'ready' CHECK (state IN ('ready', 'leased', 'done')), token bigint, "
          "worker_id text, lease_until timestamptz, losses int NOT NULL DEFAULT 0, last_worker "
          "text, PRIMARY KEY (run_id, id)) PARTITION BY LIST (run_id); "
          "CREATE INDEX ON {3} (run_id, id) WHERE state = 'ready'; "
          "CREATE INDEX ON {3} (lease_until) WHERE state = 'leased'; "
          "CREATE TABLE {4} (run_id bigint NOT NULL, id bigint NOT NULL, slice_id bigint NOT "
          "NULL, key text NOT NULL, attempt int NOT NULL, payload bytea NOT NULL, PRIMARY KEY "
          "(run_id, id), UNIQUE (run_id, key, attempt)) PARTITION BY LIST (run_id); "
          "CREATE INDEX ON {4} (run_id, slice_id); "
          "CREATE TABLE {5} (run_id bigint NOT NULL, item_id bigint NOT NULL, status text NOT "
          "NULL CHECK (status IN ('done', 'dead')), result bytea NOT NULL, worker_id text, "
          "token bigint, recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY "
          "KEY (run_id, item_id)) PARTITION BY LIST (run_id); "
          "INSERT INTO {6} VALUES (1)",
          T("ids"), T("runs"), T("workers"), T("slices"), T("items"), T("outcomes"),
          T("queue_meta"))));
    }
    return OkStatus();
  };
  if (auto s = body(); !s) {
    (void)conn_->Exec("ROLLBACK");
    return s;
  }
  return conn_->Exec("COMMIT");
}

Result<int64_t> QueueStore::OpenRun(const RunSpec& spec, bool adopt) {
  // A coordinator that just died holds the lock until its server process notices the
  // closed socket, which is quick but not synchronous: a rerun waits a little for it.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    FORKLIFT_ASSIGN_OR_RETURN(
        auto locked, conn_->Query("SELECT pg_try_advisory_lock(hashtext($1))",
                                  Params{"forklift-queue-run:" + schema_ + ":" + spec.name}));
    if (!locked.empty() && locked[0][0] == "t") break;
    if (std::chrono::steady_clock::now() > give_up) {
      return FailedPreconditionError(
          fmt::format("another coordinator is following run {} in the queue", spec.name));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FORKLIFT_ASSIGN_OR_RETURN(
      auto rows, conn_->Query(fmt::format("SELECT id, state FROM {} WHERE name = $1", T("runs")),
                              Params{spec.name}));
  if (!rows.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(int64_t id, ToInt(rows[0][0]));
    if (adopt && rows[0][1] == "open") return id;
    FORKLIFT_RETURN_IF_ERROR(DropRun(id));
  }
  FORKLIFT_ASSIGN_OR_RETURN(auto next, conn_->Query(fmt::format("SELECT nextval('{}')", T("ids"))));
  FORKLIFT_ASSIGN_OR_RETURN(int64_t id, ToInt(next.at(0)[0]));
  std::string ddl = "BEGIN; ";
  for (const char* table : {"slices", "items", "outcomes"}) {
    ddl += fmt::format("CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({}); ",
                       T(fmt::format("{}_{}", table, id)), T(table), id);
  }
  ddl += fmt::format("INSERT INTO {} (id, name, kind, max_losses) VALUES ({}, {}, {}, {}); COMMIT",
                     T("runs"), id, sinks::QuoteLiteral(spec.name), sinks::QuoteLiteral(spec.kind),
                     spec.max_losses);
  if (auto s = conn_->Exec(ddl); !s) {
    (void)conn_->Exec("ROLLBACK");
    return tl::unexpected(s.error());
  }
  return id;
}

Result<std::vector<int64_t>> QueueStore::Enqueue(int64_t run_id,
                                                 const std::vector<QueueItem>& items) {
  if (items.empty()) return std::vector<int64_t>{};
  // One statement: the slice row exists only when at least one item is new, and both are
  // visible to claims at once (one commit).
  std::string sql = fmt::format(
      "WITH s AS (SELECT nextval('{0}') AS id), "
      "v AS (SELECT * FROM unnest($2::text[], $3::int[], $4::text[]) WITH ORDINALITY AS "
      "v(key, attempt, payload, ord)), "
      "ins AS (INSERT INTO {1} (run_id, id, slice_id, key, attempt, payload) "
      "SELECT $1, nextval('{0}'), s.id, v.key, v.attempt, decode(v.payload, 'hex') FROM v, s "
      "ORDER BY v.ord ON CONFLICT (run_id, key, attempt) DO NOTHING RETURNING id, key, attempt), "
      "sl AS (INSERT INTO {2} (run_id, id) SELECT $1, s.id FROM s WHERE EXISTS (SELECT 1 FROM "
      "ins)) "
      "SELECT id, key, attempt FROM ins",
      T("ids"), T("items"), T("slices"));
  Params p{std::to_string(run_id), ArrayLiteral(items, [](const QueueItem& i) { return i.key; }),
           ArrayLiteral(items, [](const QueueItem& i) { return std::to_string(i.attempt); }),
           ArrayLiteral(items, [](const QueueItem& i) { return Hex(i.payload); })};
  FORKLIFT_ASSIGN_OR_RETURN(auto rows, conn_->Query(sql, p));
  std::map<std::pair<std::string, int>, int64_t> ids;
  auto add = [&](const std::vector<sinks::PgConnection::Row>& rs) -> Status {
    for (const auto& r : rs) {
      FORKLIFT_ASSIGN_OR_RETURN(int64_t id, ToInt(r[0]));
      FORKLIFT_ASSIGN_OR_RETURN(int64_t attempt, ToInt(r[2]));
      ids[{r[1].value_or(""), static_cast<int>(attempt)}] = id;
    }
    return OkStatus();
  };
  FORKLIFT_RETURN_IF_ERROR(add(rows));
  if (ids.size() < items.size()) {
    // Enqueued before (a coordinator's rerun adopting its run): the existing ids.
    FORKLIFT_ASSIGN_OR_RETURN(
        auto old, conn_->Query(fmt::format("SELECT id, key, attempt FROM {} WHERE run_id = $1 "
                                           "AND key = ANY($2::text[])",
                                           T("items")),
                               Params{p[0], p[1]}));
    FORKLIFT_RETURN_IF_ERROR(add(old));
  }
  std::vector<int64_t> out;
  out.reserve(items.size());
  for (const QueueItem& i : items) {
    auto it = ids.find({i.key, i.attempt});
    if (it == ids.end()) return InternalError("queue: an enqueued item has no id: " + i.key);
    out.push_back(it->second);
  }
  return out;
}

Result<std::vector<ItemOutcome>> QueueStore::Outcomes(int64_t run_id,
                                                      const std::vector<int64_t>& item_ids) {
  std::vector<ItemOutcome> out;
  if (item_ids.empty()) return out;
  FORKLIFT_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(fmt::format("SELECT item_id, status, encode(result, 'hex') FROM {} WHERE "
                               "run_id = $1 AND item_id = ANY($2::bigint[])",
                               T("outcomes")),
                   Params{std::to_string(run_id), IntArray(item_ids)}));
  for (const auto& r : rows) {
    ItemOutcome o;
    FORKLIFT_ASSIGN_OR_RETURN(o.item_id, ToInt(r[0]));
    o.status = r[1] == "dead" ? OutcomeStatus::kDead : OutcomeStatus::kDone;
    FORKLIFT_ASSIGN_OR_RETURN(o.result, Unhex(r[2].value_or("")));
    out.push_back(std::move(o));
  }
  return out;
}

Result<int64_t> QueueStore::LiveWorkers(Duration within) {
  FORKLIFT_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(fmt::format("SELECT count(*) FROM {} WHERE stopped_at IS NULL AND last_seen > "
                               "clock_timestamp() - $1 * interval '1 millisecond'",
                               T("workers")),
                   Params{std::to_string(Millis(within))}));
  return ToInt(rows.at(0)[0]);
}

Status QueueStore::CancelRun(int64_t run_id) {
  return conn_->Exec(
      fmt::format("UPDATE {} SET state = 'cancelled' WHERE id = {}", T("runs"), run_id));
}

Status QueueStore::DropRun(int64_t run_id) {
  // DROP of a partition locks its parent; a long transaction elsewhere that holds a lock on
  // it must not make every claim queue behind this DROP. So: a short lock_timeout, and on
  // failure the run is marked finished (not claimable) and a later Reap drops it.
  std::string sql = fmt::format(
      "BEGIN; SET LOCAL lock_timeout = '500ms'; DROP TABLE IF EXISTS {}, {}, {}; DELETE FROM {} "
      "WHERE id = {}; COMMIT",
      T(fmt::format("slices_{}", run_id)), T(fmt::format("items_{}", run_id)),
      T(fmt::format("outcomes_{}", run_id)), T("runs"), run_id);
  if (auto s = conn_->Exec(sql); !s) {
    (void)conn_->Exec("ROLLBACK");
    if (!conn_->ok()) return s;
    return conn_->Exec(
        fmt::format("UPDATE {} SET state = 'finished' WHERE id = {}", T("runs"), run_id));
  }
  return OkStatus();
}

Status QueueStore::RegisterWorker(std::string_view worker_id, std::string_view host, int pid,
                                  int slots) {
  return conn_
      ->Query(fmt::format("INSERT INTO {} (id, host, pid, slots) VALUES ($1, $2, $3, $4)",
                          T("workers")),
              Params{std::string(worker_id), std::string(host), std::to_string(pid),
                     std::to_string(slots)})
      .map([](auto&&) {});
}

Status QueueStore::UnregisterWorker(std::string_view worker_id) {
  return conn_
      ->Query(
          fmt::format("UPDATE {} SET stopped_at = clock_timestamp() WHERE id = $1", T("workers")),
          Params{std::string(worker_id)})
      .map([](auto&&) {});
}

Result<std::vector<Lease>> QueueStore::Claim(std::string_view worker_id, int max_slices,
                                             Duration lease, std::string_view run_name) {
  // One statement, one round trip (and one commit): the leases and their items without an
  // outcome yet. The items' read sees the statement's snapshot, as the second statement of
  // a transaction would (what was recorded before the claim).
  FORKLIFT_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(
          fmt::format(
              "WITH c AS (SELECT s.run_id, s.id FROM {0} s JOIN {1} r ON r.id = s.run_id "
              "WHERE s.state = 'ready' AND r.state = 'open' AND ($3 = '' OR r.name = $3) "
              "ORDER BY s.run_id, s.id LIMIT $2 FOR UPDATE OF s SKIP LOCKED), "
              "u AS (UPDATE {0} s SET state = 'leased', token = nextval('{2}'), worker_id = $1, "
              "lease_until = clock_timestamp() + $4 * interval '1 millisecond' FROM c "
              "WHERE s.run_id = c.run_id AND s.id = c.id RETURNING s.run_id, s.id, s.token) "
              "SELECT u.run_id, u.id, u.token, i.id, i.key, i.attempt, encode(i.payload, 'hex') "
              "FROM u LEFT JOIN {3} i ON i.run_id = u.run_id AND i.slice_id = u.id AND NOT "
              "EXISTS (SELECT 1 FROM {4} o WHERE o.run_id = i.run_id AND o.item_id = i.id) "
              "ORDER BY u.run_id, u.id, i.id",
              T("slices"), T("runs"), T("ids"), T("items"), T("outcomes")),
          Params{std::string(worker_id), std::to_string(max_slices), std::string(run_name),
                 std::to_string(Millis(lease))}));
  std::vector<Lease> out;
  for (const auto& r : rows) {
    FORKLIFT_ASSIGN_OR_RETURN(int64_t run_id, ToInt(r[0]));
    FORKLIFT_ASSIGN_OR_RETURN(int64_t slice_id, ToInt(r[1]));
    if (out.empty() || out.back().run_id != run_id || out.back().slice_id != slice_id) {
      Lease l;
      l.run_id = run_id;
      l.slice_id = slice_id;
      FORKLIFT_ASSIGN_OR_RETURN(l.token, ToInt(r[2]));
      out.push_back(std::move(l));
    }
    if (!r[3]) continue;  // a slice with every item recorded
    QueueItem item;
    FORKLIFT_ASSIGN_OR_RETURN(item.id, ToInt(r[3]));
    item.key = r[4].value_or("");
    FORKLIFT_ASSIGN_OR_RETURN(int64_t attempt, ToInt(r[5]));
    item.attempt = static_cast<int>(attempt);
    FORKLIFT_ASSIGN_OR_RETURN(item.payload, Unhex(r[6].value_or("")));
    out.back().items.push_back(std::move(item));
  }
  return out;
}

Result<bool> QueueStore::RecordOutcomes(const Lease& lease,
                                        const std::vector<ItemOutcome>& outcomes, bool finish) {
  // The fence: the slice row locked FOR UPDATE with the token and an unexpired lease, in
  // the same statement as the insert, so a reaper's update either came first (no row:
  // nothing written) or waits for this commit. `finish` ends the lease in the same
  // statement (one commit for a slice's last outcomes and its end).
  std::string sql = fmt::format(
      "WITH f AS (SELECT worker_id FROM {0} WHERE run_id = $1 AND id = $2 AND state = 'leased' "
      "AND token = $3 AND lease_until >= clock_timestamp() FOR UPDATE), "
      "ins AS (INSERT INTO {1} (run_id, item_id, status, result, worker_id, token) "
      "SELECT $1, v.id, v.st, decode(v.res, 'hex'), f.worker_id, $3 FROM unnest($4::bigint[], "
      "$5::text[], $6::text[]) AS v(id, st, res), f ON CONFLICT DO NOTHING RETURNING 1), "
      "fin AS (UPDATE {0} s SET state = 'done', token = NULL, lease_until = NULL WHERE $7 AND "
      "s.run_id = $1 AND s.id = $2 AND EXISTS (SELECT 1 FROM f)) "
      "SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM ins)",
      T("slices"), T("outcomes"));
  std::vector<int64_t> ids;
  for (const auto& o : outcomes) ids.push_back(o.item_id);
  FORKLIFT_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(
          sql,
          Params{std::to_string(lease.run_id), std::to_string(lease.slice_id),
                 std::to_string(lease.token), IntArray(ids),
                 ArrayLiteral(outcomes, [](const ItemOutcome& o) { return StatusText(o.status); }),
                 ArrayLiteral(outcomes, [](const ItemOutcome& o) { return Hex(o.result); }),
                 finish ? "true" : "false"}));
  return rows.at(0)[0] != "0";
}

Result<QueueStore::Exchanged> QueueStore::Exchange(const std::vector<SliceOutcomes>& records,
                                                   std::string_view worker_id, int claim_slices,
                                                   Duration lease, std::string_view run_name) {
  Exchanged out;
  const bool both = !records.empty() && claim_slices > 0;
  if (both) FORKLIFT_RETURN_IF_ERROR(conn_->Exec("BEGIN"));
  auto body = [&]() -> Status {
    if (!records.empty()) {
      // The fence of RecordOutcomes for each slice: its row locked FOR UPDATE with its
      // token and an unexpired lease; outcomes of a slice whose row is not in f are not
      // written, and only slices in f end.
      std::vector<int64_t> runs, slices, tokens, o_runs, o_slices, o_ids;
      std::vector<std::string> fins;
      std::vector<const ItemOutcome*> all;
      for (const SliceOutcomes& r : records) {
        runs.push_back(r.lease->run_id);
        slices.push_back(r.lease->slice_id);
        tokens.push_back(r.lease->token);
        fins.push_back(r.finish ? "t" : "f");
        for (const ItemOutcome& o : r.outcomes) {
          o_runs.push_back(r.lease->run_id);
          o_slices.push_back(r.lease->slice_id);
          o_ids.push_back(o.item_id);
          all.push_back(&o);
        }
      }
      std::string sql = fmt::format(
          "WITH f AS (SELECT s.run_id, s.id, s.token, s.worker_id, h.fin FROM {0} s JOIN "
          "unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bool[]) AS h(run_id, id, token, "
          "fin) ON s.run_id = h.run_id AND s.id = h.id AND s.token = h.token WHERE s.state = "
          "'leased' AND s.lease_until >= clock_timestamp() FOR UPDATE OF s), "
          "ins AS (INSERT INTO {1} (run_id, item_id, status, result, worker_id, token) "
          "SELECT v.run_id, v.id, v.st, decode(v.res, 'hex'), f.worker_id, f.token FROM "
          "unnest($5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::text[]) AS "
          "v(run_id, slice_id, id, st, res) JOIN f ON f.run_id = v.run_id AND f.id = v.slice_id "
          "ON CONFLICT DO NOTHING RETURNING 1), "
          "fin AS (UPDATE {0} s SET state = 'done', token = NULL, lease_until = NULL FROM f "
          "WHERE f.fin AND s.run_id = f.run_id AND s.id = f.id) "
          "SELECT f.id, (SELECT count(*) FROM ins) FROM f",
          T("slices"), T("outcomes"));
      FORKLIFT_ASSIGN_OR_RETURN(
          auto rows,
          conn_->Query(
              sql,
              Params{IntArray(runs), IntArray(slices), IntArray(tokens),
                     ArrayLiteral(fins, [](const std::string& v) { return v; }), IntArray(o_runs),
                     IntArray(o_slices), IntArray(o_ids),
                     ArrayLiteral(all, [](const ItemOutcome* o) { return StatusText(o->status); }),
                     ArrayLiteral(all, [](const ItemOutcome* o) { return Hex(o->result); })}));
      for (const auto& r : rows) {
        FORKLIFT_ASSIGN_OR_RETURN(int64_t id, ToInt(r[0]));
        out.held.push_back(id);
      }
    }
    if (claim_slices > 0) {
      FORKLIFT_ASSIGN_OR_RETURN(out.claimed, Claim(worker_id, claim_slices, lease, run_name));
    }
    return OkStatus();
  };
  if (auto st = body(); !st) {
    if (both) (void)conn_->Exec("ROLLBACK");
    return tl::unexpected(st.error());
  }
  if (both) FORKLIFT_RETURN_IF_ERROR(conn_->Exec("COMMIT"));
  return out;
}

Result<bool> QueueStore::FinishSlice(const Lease& lease) {
  auto tag = conn_->ExecCommand(fmt::format(
      "UPDATE {} SET state = 'done', token = NULL, lease_until = NULL WHERE run_id = {} AND "
      "id = {} AND state = 'leased' AND token = {} AND lease_until >= clock_timestamp()",
      T("slices"), lease.run_id, lease.slice_id, lease.token));
  if (!tag) return tl::unexpected(std::move(tag).error());
  return *tag == "UPDATE 1";
}

Result<std::vector<int64_t>> QueueStore::Renew(std::string_view worker_id,
                                               const std::vector<Lease>& held, Duration lease) {
  std::vector<int64_t> runs, slices, tokens, out;
  for (const Lease& l : held) {
    runs.push_back(l.run_id);
    slices.push_back(l.slice_id);
    tokens.push_back(l.token);
  }
  FORKLIFT_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(
          fmt::format(
              "WITH w AS (UPDATE {0} SET last_seen = clock_timestamp() WHERE id = $1) "
              "UPDATE {1} s SET lease_until = clock_timestamp() + $5 * interval '1 millisecond' "
              "FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS h(run_id, id, token), "
              "{2} r WHERE s.run_id = h.run_id AND s.id = h.id AND s.token = h.token AND "
              "s.state = 'leased' AND s.lease_until >= clock_timestamp() AND r.id = s.run_id "
              "AND r.state = 'open' RETURNING s.id",
              T("workers"), T("slices"), T("runs")),
          Params{std::string(worker_id), IntArray(runs), IntArray(slices), IntArray(tokens),
                 std::to_string(Millis(lease))}));
  for (const auto& r : rows) {
    FORKLIFT_ASSIGN_OR_RETURN(int64_t id, ToInt(r[0]));
    out.push_back(id);
  }
  return out;
}

Status QueueStore::Release(const std::vector<Lease>& held) {
  if (held.empty()) return OkStatus();
  std::vector<int64_t> runs, slices, tokens;
  for (const Lease& l : held) {
    runs.push_back(l.run_id);
    slices.push_back(l.slice_id);
    tokens.push_back(l.token);
  }
  return conn_
      ->Query(fmt::format("UPDATE {} s SET state = 'ready', token = NULL, worker_id = NULL, "
                          "lease_until = NULL FROM unnest($1::bigint[], $2::bigint[], "
                          "$3::bigint[]) AS h(run_id, id, token) WHERE s.run_id = h.run_id AND "
                          "s.id = h.id AND s.token = h.token AND s.state = 'leased'",
                          T("slices")),
              Params{IntArray(runs), IntArray(slices), IntArray(tokens)})
      .map([](auto&&) {});
}

Result<ReapReport> QueueStore::Reap() {
  ReapReport report;
  FORKLIFT_RETURN_IF_ERROR(conn_->Exec("BEGIN"));
  auto body = [&]() -> Status {
    FORKLIFT_ASSIGN_OR_RETURN(
        auto expired,
        conn_->Query(fmt::format(
            "WITH e AS (SELECT run_id, id FROM {0} WHERE state = 'leased' AND lease_until < "
            "clock_timestamp() FOR UPDATE SKIP LOCKED) "
            "UPDATE {0} s SET state = 'ready', token = NULL, last_worker = s.worker_id, "
            "worker_id = NULL, lease_until = NULL, losses = s.losses + 1 FROM e, {1} r WHERE "
            "s.run_id = e.run_id AND s.id = e.id AND r.id = s.run_id "
            "RETURNING s.run_id, s.id, s.losses, coalesce(s.last_worker, ''), r.max_losses",
            T("slices"), T("runs"))));
    report.expired = static_cast<int>(expired.size());
    for (const auto& r : expired) {
      Params key{r[0], r[1]};
      FORKLIFT_ASSIGN_OR_RETURN(int64_t losses, ToInt(r[2]));
      FORKLIFT_ASSIGN_OR_RETURN(int64_t max_losses, ToInt(r[4]));
      FORKLIFT_ASSIGN_OR_RETURN(
          auto pending,
          conn_->Query(fmt::format("SELECT i.id FROM {} i WHERE i.run_id = $1 AND i.slice_id = $2 "
                                   "AND NOT EXISTS (SELECT 1 FROM {} o WHERE o.run_id = i.run_id "
                                   "AND o.item_id = i.id)",
                                   T("items"), T("outcomes")),
                       key));
      const std::string done =
          fmt::format("UPDATE {} SET state = 'done' WHERE run_id = $1 AND id = $2", T("slices"));
      if (pending.empty()) {
        FORKLIFT_RETURN_IF_ERROR(conn_->Query(done, key));
      } else if (pending.size() > 1) {
        // Isolate what may be poison: each item left gets a slice of its own, which
        // inherits the losses so far.
        FORKLIFT_RETURN_IF_ERROR(conn_->Query(
            fmt::format("WITH p AS MATERIALIZED (SELECT i.id AS item_id, nextval('{0}') AS sid "
                        "FROM {1} i WHERE i.run_id = $1 AND i.slice_id = $2 AND NOT EXISTS "
                        "(SELECT 1 FROM {2} o WHERE o.run_id = i.run_id AND o.item_id = i.id)), "
                        "ns AS (INSERT INTO {3} (run_id, id, losses, last_worker) SELECT $1, "
                        "p.sid, $3, $4 FROM p), "
                        "mv AS (UPDATE {1} i SET slice_id = p.sid FROM p WHERE i.run_id = $1 "
                        "AND i.id = p.item_id) "
                        "UPDATE {3} SET state = 'done' WHERE run_id = $1 AND id = $2",
                        T("ids"), T("items"), T("outcomes"), T("slices")),
            Params{r[0], r[1], r[2], r[3]}));
        ++report.split;
      } else if (losses >= max_losses) {
        std::string reason = fmt::format("dead-lettered: lost its worker {} times (last: {})",
                                         losses, r[3].value_or("?"));
        FORKLIFT_RETURN_IF_ERROR(conn_->Query(
            fmt::format("INSERT INTO {} (run_id, item_id, status, result) VALUES ($1, $2, "
                        "'dead', convert_to($3, 'UTF8')) ON CONFLICT DO NOTHING",
                        T("outcomes")),
            Params{r[0], pending[0][0], reason}));
        FORKLIFT_RETURN_IF_ERROR(conn_->Query(done, key));
        ++report.dead_lettered;
      }
    }
    return OkStatus();
  };
  if (auto s = body(); !s) {
    (void)conn_->Exec("ROLLBACK");
    return tl::unexpected(s.error());
  }
  FORKLIFT_RETURN_IF_ERROR(conn_->Exec("COMMIT"));
  // Runs whose drop found their partitions busy: try again now, briefly.
  FORKLIFT_ASSIGN_OR_RETURN(
      auto finished,
      conn_->Query(fmt::format("SELECT id FROM {} WHERE state = 'finished' LIMIT 1", T("runs"))));
  for (const auto& r : finished) {
    FORKLIFT_ASSIGN_OR_RETURN(int64_t id, ToInt(r[0]));
    FORKLIFT_RETURN_IF_ERROR(DropRun(id));
  }
  return report;
}

}  // namespace forklift::queue
