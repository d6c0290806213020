#include "batch/batch_options.h"

#include <thread>

namespace forklift {

size_t BatchOptions::DefaultWorkerCount() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

namespace batch {

size_t EffectiveWindow(const BatchOptions& options) {
  return options.window == 0 ? 4 * options.workers : options.window;
}

Status ValidateBatchOptions(const BatchOptions& o, const detail::EngineHooks& hooks) {
  if (o.workers == 0) return InvalidArgumentError("BatchOptions.workers must be >= 1, got 0");
  if (o.window != 0 && o.window < o.workers) {
    return InvalidArgumentError("BatchOptions.window must be 0 (4 x workers) or >= workers (" +
                                std::to_string(o.workers) + "), got " + std::to_string(o.window));
  }
  if (o.timeout && *o.timeout <= Duration::zero()) {
    return InvalidArgumentError("BatchOptions.timeout must be > 0 (or std::nullopt: none)");
  }
  FORKLIFT_RETURN_IF_ERROR(ValidateRetryOptions(o.retry, "BatchOptions.retry"));
  if (o.progress_interval <= Duration::zero()) {
    return InvalidArgumentError("BatchOptions.progress_interval must be > 0");
  }
  if (o.isolation == Isolation::kProcess && !hooks.child_fn) {
    return InvalidArgumentError(
        "BatchOptions.isolation=process needs forklift::Codec for the item and value types");
  }
  if (hooks.remote && !hooks.child_fn) {
    return InvalidArgumentError(
        "run_batch with a queue needs forklift::Codec for the item and value types");
  }
  if (!o.batch_id.empty() && !hooks.has_keys) {
    return InvalidArgumentError(
        "BatchOptions.batch_id (checkpoints) needs an item key: a string or arithmetic item, "
        "or a forklift::Codec for the item type");
  }
  return OkStatus();
}

}  // namespace batch
}  // namespace forklift
