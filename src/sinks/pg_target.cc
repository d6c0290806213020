#include "sinks/pg_target.h"

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sinks/pg_connection.h"
#include "sinks/pg_key_form.h"
#include "sinks/pg_ledger.h"
#include "sinks/pg_sink.h"
#include "sinks/pg_table.h"

namespace forklift::sinks {
namespace {

class PgTarget final : public Target {
 public:
  PgTarget(TargetAddress address, TableSpec spec, std::unique_ptr<PgConnection> conn)
      : address_(std::move(address)), spec_(std::move(spec)), conn_(std::move(conn)) {}

  Status Check() {
    FORKLIFT_ASSIGN_OR_RETURN(table_, ReadPgTable(*conn_, spec_, address_));
    return {};
  }

  Status EnsureLedger() override {
    FORKLIFT_RETURN_IF_ERROR(EnsureLedgerTable());
    if (spec_.ledger_last_key) return EnsureLastKeyColumn();
    return {};
  }

  // Query loads that resume by key record each chunk's last key; a ledger made before
  // that column existed gets it (needs the ledger's owner; nothing else changes).
  Status EnsureLastKeyColumn() {
    const std::string ledger = PgLedgerTable(spec_);
    const std::optional<std::string> p[] = {ledger};
    auto has = conn_->Query(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'last_key' "
        "AND NOT attisdropped",
        p);
    if (!has) return tl::unexpected(Decorate(has.error()));
    if (!has->empty()) return {};
    Status st =
        conn_->Exec(fmt::format("ALTER TABLE {} ADD COLUMN IF NOT EXISTS last_key text", ledger));
    if (!st) {
      return tl::unexpected(Decorate(
          Error{st.error().code,
                fmt::format("the ledger {} has no last_key column, which --resume-key needs, and "
                            "adding it failed ({}): have its owner run ALTER TABLE {} ADD COLUMN "
                            "last_key text",
                            ledger, st.error().message, ledger)}));
    }
    return {};
  }

  Status EnsureLedgerTable() {
    const std::string ledger = PgLedgerTable(spec_);
    // An existing ledger is used as it is: even CREATE TABLE IF NOT EXISTS needs CREATE on
    // the schema, which a role that may only write (PostgreSQL 15's default `public`) lacks.
    const std::optional<std::string> p[] = {ledger};
    auto have = conn_->Query(
        "SELECT n.nspname, has_table_privilege(c.oid, 'SELECT'), "
        "has_table_privilege(c.oid, 'INSERT'), current_user FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
        p);
    if (!have) return tl::unexpected(Decorate(have.error()));
    if (!have->empty()) {
      const auto& r = (*have)[0];
      std::vector<std::string> lacks;
      if (r[1].value_or("") != "t") lacks.push_back("SELECT");
      if (r[2].value_or("") != "t") lacks.push_back("INSERT");
      if (lacks.empty()) return {};
      const std::string shown = r[0].value_or("") + ".forklift_load_chunks";
      return FailedPreconditionError(fmt::format(
          "--to {}: permission denied: role {} lacks {} on the ledger table {}, which every "
          "load writes (GRANT SELECT, INSERT ON {} TO {})",
          address_.display, r[3].value_or(""), fmt::join(lacks, ", "), shown, shown,
          r[3].value_or("")));
    }
    const std::string& named = spec_.ledger_schema.empty() ? spec_.schema : spec_.ledger_schema;
    const std::optional<std::string> q[] = {named.empty() ? std::nullopt
                                                          : std::optional<std::string>(named)};
    auto where = conn_->Query(
        "SELECT n.nspname, has_schema_privilege(n.oid, 'CREATE'), current_user "
        "FROM pg_namespace n WHERE n.nspname = COALESCE($1, current_schema())",
        q);
    if (!where) return tl::unexpected(Decorate(where.error()));
    if (where->empty()) {
      if (!spec_.ledger_schema.empty()) {
        return FailedPreconditionError(fmt::format("--ledger-schema {}: no such schema in {}",
                                                   spec_.ledger_schema, address_.display));
      }
      return FailedPreconditionError(
          fmt::format("--to {}: no schema to create the ledger table forklift_load_chunks in (the "
                      "search_path names none that exists): name one with --ledger-schema",
                      address_.display));
    }
    const auto& w = (*where)[0];
    const std::string schema = w[0].value_or(""), role = w[2].value_or("");
    if (w[1].value_or("") != "t") {
      return FailedPreconditionError(fmt::format(
          "--to {}: permission denied: role {} lacks CREATE on schema {}, which creating the "
          "ledger table {}.forklift_load_chunks needs. Have the schema's owner create it once "
          "(its DDL is in docs/load.md) and GRANT SELECT, INSERT ON it TO {}, or put the "
          "ledger in a schema {} may create tables in (--ledger-schema)",
          address_.display, role, schema, schema, role, role));
    }
    auto st = conn_->Exec(PgLedgerDdl(spec_));
    // Two loads creating the ledger at once: the loser's IF NOT EXISTS can still collide,
    // on the table's name (42P07) or on its row type's (42710, or 23505 in pg_type).
    const std::string& state = conn_->last_error().sqlstate;
    if (!st && state != "23505" && state != "42P07" && state != "42710") {
      return tl::unexpected(Decorate(st.error()));
    }
    return {};
  }

  Status ClaimLoad() override {
    // Keyed by the ledger and the load id; a session lock, so it ends with the connection.
    const std::optional<std::string> p[] = {PgLedgerTable(spec_) + "\x1f" + spec_.load_id};
    auto rows =
        conn_->Query("SELECT pg_try_advisory_lock(hashtext('forklift load'), hashtext($1))", p);
    if (!rows) return tl::unexpected(Decorate(rows.error()));
    if (rows->empty() || (*rows)[0][0].value_or("") != "t") {
      return AbortedError(fmt::format(
          "another load with load id {} is running against {} (table {}): wait for it to "
          "end (rerunning then resumes it), or give this one another --load-id",
          spec_.load_id, address_.display, ShownTable(spec_)));
    }
    return {};
  }

  const TargetAddress& address() const override { return address_; }

  Result<int> MaxWorkers() override {
    auto rows = conn_->Query("SHOW max_connections");
    if (!rows) return tl::unexpected(Decorate(rows.error()));
    if (rows->empty() || !(*rows)[0][0]) return InternalError("SHOW max_connections: no value");
    return std::stoi(*(*rows)[0][0]) / 2;
  }

  Result<std::vector<LedgerEntry>> CommittedChunks() override {
    const std::optional<std::string> p[] = {spec_.load_id};
    auto rows = conn_->Query(
        fmt::format("SELECT {} FROM {} WHERE load_id = $1 AND chunk >= 0 ORDER BY chunk",
                    spec_.ledger_last_key ? kPgLedgerKeyColumns : kPgLedgerColumns,
                    PgLedgerTable(spec_)),
        p);
    if (!rows) return tl::unexpected(Decorate(rows.error()));
    std::vector<LedgerEntry> out;
    out.reserve(rows->size());
    for (const auto& r : *rows) out.push_back(PgLedgerEntry(r));
    return out;
  }

  Result<std::unique_ptr<Sink>> OpenSink() override {
    return OpenPgSink(address_, written_ ? *written_ : spec_, table_);
  }

  // Table lifecycle (pg_table.h): the sinks write `written_`, the shadow under --replace.
  Status PrepareTable() override {
    FORKLIFT_ASSIGN_OR_RETURN(written_, PgPrepareTable(*conn_, spec_, address_));
    return {};
  }
  Result<bool> FinishTable() override {
    return written_ ? PgFinishTable(*conn_, spec_, *written_, address_) : false;
  }

  KeyCanonicalizer CanonicalKey() const override {
    std::vector<PgKeyForm> forms;
    for (size_t i = 0; i < table_.key_typnames.size(); ++i) {
      forms.emplace_back(table_.key_typnames[i], table_.key_typmods[i]);
    }
    return [forms = std::move(forms)](size_t key_index, std::string_view value, std::string* out) {
      if (key_index < forms.size()) {
        forms[key_index].Append(value, out);
      } else {
        out->append(value);
      }
    };
  }

 private:
  Error Decorate(const Error& e) const { return OnTarget(address_, e); }

  TargetAddress address_;
  TableSpec spec_;
  std::unique_ptr<PgConnection> conn_;
  PgTableInfo table_;                 // from Check()
  std::optional<TableSpec> written_;  // from PrepareTable()
};

}  // namespace

Result<std::unique_ptr<Target>> OpenPgTarget(const TargetAddress& address, const TableSpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, ConnectPg(address));
  auto target = std::make_unique<PgTarget>(address, spec, std::move(conn));
  FORKLIFT_RETURN_IF_ERROR(target->Check());
  return std::unique_ptr<Target>(std::move(target));
}

}  // namespace forklift::sinks
