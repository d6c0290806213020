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
    auto st = conn_->Exec(PgLedgerDdl(spec_));
    // Two loads creating the ledger at once: the loser's IF NOT EXISTS can still collide.
    if (!st && conn_->last_error().sqlstate != "23505" &&
        conn_->last_error().sqlstate != "42P07") {
      return tl::unexpected(Decorate(st.error()));
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
        fmt::format("SELECT {} FROM {} WHERE load_id = $1 ORDER BY chunk", kPgLedgerColumns,
                    PgLedgerTable(spec_)),
        p);
    if (!rows) return tl::unexpected(Decorate(rows.error()));
    std::vector<LedgerEntry> out;
    out.reserve(rows->size());
    for (const auto& r : *rows) out.push_back(PgLedgerEntry(r));
    return out;
  }

  Result<std::unique_ptr<Sink>> OpenSink() override {
    return OpenPgSink(address_, spec_, table_);
  }

  KeyCanonicalizer CanonicalKey() const override {
    std::vector<PgKeyForm> forms;
    for (size_t i = 0; i < table_.key_typnames.size(); ++i) {
      forms.emplace_back(table_.key_typnames[i], table_.key_typmods[i]);
    }
    return [forms = std::move(forms)](size_t key_index, std::string_view value,
                                      std::string* out) {
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
  PgTableInfo table_;  // from Check()
};

}  // namespace

Result<std::unique_ptr<Target>> OpenPgTarget(const TargetAddress& address,
                                             const TableSpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, ConnectPg(address));
  auto target = std::make_unique<PgTarget>(address, spec, std::move(conn));
  FORKLIFT_RETURN_IF_ERROR(target->Check());
  return std::unique_ptr<Target>(std::move(target));
}

}  // namespace forklift::sinks
