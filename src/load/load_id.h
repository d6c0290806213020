// The default load id: what makes two invocations "the same load" for resume.
// Thread safety: pure functions.
#ifndef FORKLIFT_LOAD_LOAD_ID_H_
#define FORKLIFT_LOAD_LOAD_ID_H_

#include <string>
#include <vector>

#include "forklift/result.h"
#include "load/load_options.h"

namespace forklift::load {

// "load-" + 16 hex digits of a hash over the sources (absolute path, size, mtime), the
// target's identity (host, port, database, user or SQLite file: never the password), the
// table, the mode, the key, the columns, the CSV dialect and the chunking (rows, bytes,
// partitions), so that a rerun of the same command finds its ledger rows, and any change
// that would chunk differently starts a new load. NotFound naming a source it cannot stat.
Result<std::string> ComputeLoadId(const LoadOptions& options, const std::string& target_identity,
                                  const std::vector<std::string>& columns, int partitions);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_LOAD_ID_H_
