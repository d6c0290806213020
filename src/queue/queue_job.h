// What travels through the queue for `map --queue`: a job attempt (an expanded command
// line, so workers need no input files) and what its process did, as bytes
// (forklift/codec.h: native-endian, so coordinator and workers share an architecture).
//
// Thread safety: plain functions over values; all are thread-safe.
#ifndef FORKLIFT_QUEUE_QUEUE_JOB_H_
#define FORKLIFT_QUEUE_QUEUE_JOB_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "process/subprocess.h"

namespace forklift::queue {

// What a worker keeps of each captured stream; more is cut, and the cut is said on the
// job's stderr (docs/queue.md: a limit of the queue).
inline constexpr size_t kMaxOutputBytes = size_t{8} << 20;

// The payload of a job attempt: argv, --timeout and --termseq, from the coordinator's
// SpawnOptions (its output modes, registry and environment stay with the coordinator).
std::string EncodeJob(const process::SpawnOptions& spawn);
// On success, SpawnOptions with argv, timeout and termseq set (output captured). On
// failure, DataLoss for bytes that are not a job.
Result<process::SpawnOptions> DecodeJob(std::string_view bytes);

// A Completion as bytes, with its captured output (each stream cut at kMaxOutputBytes).
// On failure, Internal when a spilled output cannot be read back.
Result<std::string> EncodeCompletion(const process::Completion& c);
// On success, the Completion with its output in its buffers. On failure, DataLoss.
Result<process::Completion> DecodeCompletion(std::string_view bytes);

}  // namespace forklift::queue

#endif  // FORKLIFT_QUEUE_QUEUE_JOB_H_
