// `forklift dlq retry LOAD_ID`: loads a load's pending dead letters again (after the table
// or the data was fixed), through the same target, table and mode as the load.
#ifndef FORKLIFT_LOAD_DLQ_RETRY_H_
#define FORKLIFT_LOAD_DLQ_RETRY_H_

#include <cstdint>
#include <string>

#include "forklift/result.h"

namespace forklift::load {

struct DlqRetryResult {
  uint64_t pending = 0;      // dead letters that were pending
  uint64_t loaded = 0;       // now loaded (marked retried)
  uint64_t rejected = 0;     // refused again (their reason is updated; still pending)
  uint64_t unparsable = 0;   // not a record of the load's columns (left pending)
  uint64_t truncated = 0;    // cut to the reject size limit: never retried (left pending;
                             // their reason says "not retryable")
  uint64_t uncommitted = 0;  // of a chunk the load has not committed: not retried (left
                             // pending) until the load is resumed
};

// Retries each letter in its own transaction with its own ledger row (load id LOAD_ID +
// "/dlq", chunk = the letter's id and attempts), so a retry interrupted after a commit does
// not load a row twice, and a letter refused again is retried afresh next time. A letter
// whose record was cut to the reject size limit (IsTruncatedReject) is not retried: it
// is counted in `truncated` and stays pending. Nor is a letter of a load chunk that is not
// in the target's ledger for LOAD_ID (its attempt never committed: the resumed load will
// load the row or record the letter again): it is counted in `uncommitted` and stays
// pending. Letters with no chunk (journals before schema version 2) are retried as before.
// `to` overrides the recorded target (needed when the load's DSN had a password, which is
// never stored). Failure: NotFound (no such load in the journal), InvalidArgument (no
// recorded configuration, or a password-protected target without `to`), the target's
// errors.
Result<DlqRetryResult> RetryDeadLetters(const std::string& journal_path, const std::string& load_id,
                                        const std::string& to);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_DLQ_RETRY_H_
