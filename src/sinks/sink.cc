#include "sinks/sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "sinks/pg_dsn.h"
#include "sinks/pg_table.h"
#include "sinks/pg_target.h"
#include "sinks/sqlite_sink.h"
#include "sources/checksum.h"

namespace forklift::sinks {

std::string ShownTable(const TableSpec& spec) {
  return spec.schema.empty() ? spec.table : spec.schema + "." + spec.table;
}

std::string ShadowTableName(const TableSpec& spec) {
  // The load id and the table as the spec names them: a resume (same id) finds its shadow.
  sources::Checksum h;
  h.Add(spec.load_id);
  h.Add(std::string_view("\0", 1));
  h.Add(spec.schema);
  h.Add(std::string_view("\0", 1));
  h.Add(spec.table);
  return "forklift_shadow_" + h.Hex();
}

Error OnTarget(const TargetAddress& address, const Error& e) {
  return Error{
      e.code, MaskSecret(fmt::format("--to {}: {}", address.display, e.message), address.password)};
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
  // A URL of another scheme would reach libpq as a key=value string and fail obscurely
  // ("missing \"=\" after ..."). Only the scheme is echoed: the rest may hold a password.
  if (const size_t colon = to.find("://"); colon != std::string_view::npos && colon > 0) {
    const std::string_view scheme = to.substr(0, colon);
    const bool is_scheme = std::all_of(scheme.begin(), scheme.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
    if (is_scheme && scheme != "postgres" && scheme != "postgresql") {
      return InvalidArgumentError(fmt::format(
          "--to {}://...: the {} scheme is not supported (forklift loads into PostgreSQL: "
          "postgres://, postgresql:// or a libpq key=value string; or SQLite: sqlite:PATH)",
          scheme, scheme));
    }
  }
  FORKLIFT_ASSIGN_OR_RETURN(PgDsn dsn, ParsePgDsn(to));
  a.kind = TargetAddress::Kind::kPostgres;
  a.conninfo = dsn.conninfo;
  a.password = dsn.password;
  a.display = dsn.Masked();
  a.identity = "postgres:" + dsn.Identity();
  return a;
}

Result<std::unique_ptr<Target>> Target::Open(const TargetAddress& address, const TableSpec& spec) {
  if (spec.table.empty()) return InvalidArgumentError("--table: empty table name");
  if (spec.columns.empty()) return InvalidArgumentError("no columns to load");
  if (spec.upsert && spec.key.empty()) {
    return InvalidArgumentError("--mode upsert needs --key COLUMN[,COLUMN...]");
  }
  for (const std::string& k : spec.key) {
    if (std::find(spec.columns.begin(), spec.columns.end(), k) == spec.columns.end()) {
      return InvalidArgumentError(fmt::format("--key {}: not among the input's columns ({})", k,
                                              fmt::join(spec.columns, ", ")));
    }
  }
  if (address.kind == TargetAddress::Kind::kSqlite) {
    if (!spec.ledger_schema.empty()) {
      return InvalidArgumentError(
          "--ledger-schema: a PostgreSQL option (an SQLite target keeps its ledger in the "
          "database file)");
    }
    return OpenSqliteTarget(address, spec);
  }
  return OpenPgTarget(address, spec);
}

Result<std::vector<std::string>> ReadTableColumns(const TargetAddress& address,
                                                  const std::string& schema,
                                                  const std::string& table) {
  if (address.kind == TargetAddress::Kind::kSqlite) {
    return ReadSqliteTableColumns(address, schema, table);
  }
  return ReadPgTableColumns(address, schema, table);
}

}  // namespace forklift::sinks
