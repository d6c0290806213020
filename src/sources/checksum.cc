#include "sources/checksum.h"

#include <xxhash.h>

#include <new>

#include <fmt/format.h>

namespace forklift::sources {

void Checksum::StateDeleter::operator()(XXH3_state_s* state) const { XXH3_freeState(state); }

// XXH3_createState, not a member: the state needs 64-byte alignment.
Checksum::Checksum() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  Reset();
}

Checksum::~Checksum() = default;
Checksum::Checksum(Checksum&& other) noexcept = default;
Checksum& Checksum::operator=(Checksum&& other) noexcept = default;

void Checksum::Add(std::string_view bytes) {
  XXH3_64bits_update(state_.get(), bytes.data(), bytes.size());
}

uint64_t Checksum::Value() const { return XXH3_64bits_digest(state_.get()); }

std::string Checksum::Hex() const { return fmt::format("{:016x}", Value()); }

void Checksum::Reset() { XXH3_64bits_reset(state_.get()); }

}  // namespace forklift::sources
