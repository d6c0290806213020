#include "sinks/pg_ledger.h"

#include <fmt/format.h>

#include "sinks/pg_dsn.h"

namespace forklift::sinks {

std::string PgLedgerTable(const TableSpec& spec) {
  const std::string& schema = spec.ledger_schema.empty() ? spec.schema : spec.ledger_schema;
  return schema.empty() ? std::string("forklift_load_chunks")
                        : QuoteIdent(schema) + ".forklift_load_chunks";
}

std::string PgLedgerDdl(const TableSpec& spec) {
  return fmt::format(
      "CREATE TABLE IF NOT EXISTS {} (load_id text NOT NULL, chunk bigint NOT NULL, "
      "source text NOT NULL, first_line bigint NOT NULL, last_line bigint NOT NULL, "
      "rows bigint NOT NULL, rejected bigint NOT NULL, checksum text NOT NULL, "
      "target_table text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), "
      "last_key text, PRIMARY KEY (load_id, chunk))",
      PgLedgerTable(spec));
}

LedgerEntry PgLedgerEntry(const PgConnection::Row& r) {
  auto num = [&](size_t i) { return r[i] ? std::stoll(*r[i]) : 0; };
  return LedgerEntry{.chunk = num(0),
                     .source = r[1].value_or(""),
                     .first_line = num(2),
                     .last_line = num(3),
                     .rows = num(4),
                     .rejected = num(5),
                     .checksum = r[6].value_or(""),
                     .last_key = r.size() > 7 ? r[7] : std::nullopt};
}

}  // namespace forklift::sinks
