// Validation and defaults of BatchOptions, apart from the engine so the rules read in one
// place.
#ifndef FORKLIFT_BATCH_BATCH_OPTIONS_H_
#define FORKLIFT_BATCH_BATCH_OPTIONS_H_

#include <string>

#include "forklift/batch.h"
#include "forklift/detail/batch_engine.h"

namespace forklift::batch {

// Ok, or InvalidArgument naming the first bad option ("BatchOptions.workers must be >= 1").
Status ValidateBatchOptions(const BatchOptions& options, const detail::EngineHooks& hooks);

// options.window, or 4 × workers when it is 0.
size_t EffectiveWindow(const BatchOptions& options);

}  // namespace forklift::batch

#endif  // FORKLIFT_BATCH_BATCH_OPTIONS_H_
