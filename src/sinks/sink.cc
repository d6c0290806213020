#include "sinks/sink.h"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

#include "sinks/pg_dsn.h"
#include "sinks/pg_target.h"
#include "sinks/sqlite_sink.h"

namespace forklift::sinks {

std::string ShownTable(const TableSpec& spec) {
  return spec.schema.empty() ? spec.table : spec.schema + "." + spec.table;
}

Error OnTarget(const TargetAddress& address, const Error& e) {
  return Error{e.code, MaskSecret(fmt::format("--to {}: {}", address.display, e.message),
                                  address.password)};
}

Result<TargetAddress> ParseTargetAddress(std::string_view to) {
  TargetAddress a;
  if (to.starts_with("sqlite:")) {
    std::string path(to.substr(7));
    if (path.starts_with("//")) path.erase(0, 2);  // sqlite:///abs/path and sqlite://rel
    if (path.empty()) return InvalidArgumentError("--to sqlite: needs a file path (sqlite:PATH)");
    a.kind = TargetAddress::Kind::kSqlite;
    a.conninfo = path;
    a.display = "sqlite:" + path;
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(path, ec);
    a.identity = "sqlite:" + (ec ? path : abs.lexically_normal().string());
    return a;
  }
  if (to.empty()) return InvalidArgumentError("--to: empty target (postgres://... or sqlite:PATH)");
  FORKLIFT_ASSIGN_OR_RETURN(PgDsn dsn, ParsePgDsn(to));
  a.kind = TargetAddress::Kind::kPostgres;
  a.conninfo = dsn.conninfo;
  a.password = dsn.password;
  a.display = dsn.Masked();
  a.identity = "postgres:" + dsn.Identity();
  return a;
}

Result<std::unique_ptr<Target>> Target::Open(const TargetAddress& address,
                                             const TableSpec& spec) {
  if (spec.table.empty()) return InvalidArgumentError("--table: empty table name");
  if (spec.columns.empty()) return InvalidArgumentError("no columns to load");
  if (spec.upsert && spec.key.empty()) {
    return InvalidArgumentError("--mode upsert needs --key COLUMN[,COLUMN...]");
  }
  for (const std::string& k : spec.key) {
    if (std::find(spec.columns.begin(), spec.columns.end(), k) == spec.columns.end()) {
      return InvalidArgumentError(fmt::format(
          "--key {}: not among the input's columns ({})", k, fmt::join(spec.columns, ", ")));
    }
  }
  if (address.kind == TargetAddress::Kind::kSqlite) return OpenSqliteTarget(address, spec);
  return OpenPgTarget(address, spec);
}

}  // namespace forklift::sinks
