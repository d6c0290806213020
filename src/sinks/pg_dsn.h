// PostgreSQL connection strings and identifiers as users give them (`forklift load --to`,
// `--table`): parsing, display without the password, and quoting for SQL text.
//
// Thread safety: plain functions over values; all are thread-safe.
#ifndef FORKLIFT_SINKS_PG_DSN_H_
#define FORKLIFT_SINKS_PG_DSN_H_

#include <string>
#include <string_view>
#include <utility>

#include "forklift/result.h"

namespace forklift::sinks {

struct PgDsn {
  std::string conninfo;  // what PQconnectdb gets, as the user gave it (URI or key=value)
  std::string password;  // "" when the DSN names none (libpq may still use PGPASSWORD)

  // The DSN as written, for display, with its password replaced by ***:
  // "postgresql://user:***@host/db" for a URI (also a ?password= parameter, `pass%77ord=` too),
  // "host=h password=*** user=u" for key=value. Never contains the password, even where it
  // also appears elsewhere in the DSN (those places are masked too).
  std::string Masked() const;

  // "host=H port=P dbname=D user=U": which database of which server as whom, and nothing
  // else, for hashing a load id. Stable across spellings of one DSN (URI or key=value,
  // options and their order): an absent port reads 5432, an absent dbname reads as the
  // user; hostaddr stands in for an absent host. Environment variables are not consulted.
  std::string Identity() const;
};

// Parses `dsn` with libpq's PQconninfoParse: "postgres://" and "postgresql://" URIs and
// key=value strings. On success, the DSN with its password (if any) split out.
// On failure (empty or malformed text, unknown keyword), InvalidArgument
// "--to: <libpq's reason>", with anything that looks like the password masked out.
Result<PgDsn> ParsePgDsn(std::string_view dsn);

// `text` with every occurrence of `password` replaced by "***"; `text` unchanged for an
// empty password. Every message that may echo a DSN or a server error goes through this.
std::string MaskSecret(std::string_view text, std::string_view password);

// `name` as a PostgreSQL quoted identifier: always quoted, embedded quotes doubled, so that
// `x"; drop table y; --` is one literal name and case is kept. A NUL byte cannot be part
// of an identifier: ParseQualifiedName rejects it, and PgConnection refuses SQL holding one.
std::string QuoteIdent(std::string_view name);
// `s` as an SQL string literal: 'it''s'. Every forklift session has
// standard_conforming_strings on (and SQLite's strings are standard), so only the quote is
// doubled. Pure.
std::string QuoteLiteral(std::string_view s);

// Splits a table name as written on a command line: `table`, `schema.table`, or either part
// double-quoted (`"My Schema"."t.x"`, with "" for a quote inside). Unquoted parts are folded
// to lower case (ASCII), as PostgreSQL folds unquoted identifiers, so `--table Orders` and
// `select * from Orders` name the same table; quoted parts are kept as written.
// On success, {schema ("" when not given), table}. On failure (an empty part, more than two
// parts, an unterminated quote, text after a closing quote, a quote, space or control
// character inside an unquoted part, a NUL byte), InvalidArgument naming the value.
Result<std::pair<std::string, std::string>> ParseQualifiedName(std::string_view name);

// "\"s\".\"t\"", or "\"t\"" for an empty schema.
std::string QuoteQualified(std::string_view schema, std::string_view table);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_DSN_H_
