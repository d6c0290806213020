// The default load id: what makes two invocations "the same load" for resume.
// Thread safety: pure functions.
#ifndef FORKLIFT_LOAD_LOAD_ID_H_
#define FORKLIFT_LOAD_LOAD_ID_H_

#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "load/load_options.h"

namespace forklift::load {

// A source as the ledger, the dead letters and the load id know it: its absolute path,
// lexically normalised (`./a.csv`, `a.csv` and `d/../a.csv` from the same directory are
// one source; symbolic links are not resolved). `path` itself if the working directory
// cannot be read.
std::string SourceIdentity(const std::string& path);

// The table as ParseQualifiedName reads it, written back canonically: `prices`, `"prices"`
// and `PRICES` give `prices`; `"My T"` gives `"My T"`; `s.t` keeps its schema. Failure:
// ParseQualifiedName's InvalidArgument naming the value.
Result<std::string> TableIdentity(std::string_view table);

// "load-" + 16 hex digits of a hash over the sources (SourceIdentity, size, mtime), the
// target's identity (host, port, database, user or SQLite file: never the password), the
// table (TableIdentity), the mode, the key, the columns, the CSV dialect and the chunking (rows,
// bytes, partitions), so that a rerun of the same command finds its ledger rows, and any change
// that would chunk differently starts a new load. NotFound naming a source it cannot stat;
// InvalidArgument for a table name that does not parse.
Result<std::string> ComputeLoadId(const LoadOptions& options, const std::string& target_identity,
                                  const std::vector<std::string>& columns, int partitions);

// The load id of a query load (--from/--query): as ComputeLoadId, with the source's
// identity (`source_identity`: host, port, database, user or SQLite file), the query's text,
// the resume key and the partitioning in place of the files (a query has no size or mtime:
// the same query over new rows is the same load, which is how a rerun with --resume-key
// picks up where the last one stopped).
Result<std::string> ComputeQueryLoadId(const LoadOptions& options,
                                       const std::string& source_identity,
                                       const std::string& target_identity,
                                       const std::vector<std::string>& columns, int partitions);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_LOAD_ID_H_
