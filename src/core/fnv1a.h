// FNV-1a, 64 bit: a hash that is stable across builds and platforms (std::hash is not),
// for keys and fingerprints that are stored and compared across runs.
// Thread safety: a plain value.
#ifndef FORKLIFT_CORE_FNV1A_H_
#define FORKLIFT_CORE_FNV1A_H_

#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace forklift::core {

class Fnv1a {
 public:
  // Adds one field, then a separator, so ("ab", "c") and ("a", "bc") hash differently.
  Fnv1a& Add(std::string_view field) {
    for (unsigned char c : field) Mix(c);
    Mix(0xff);
    return *this;
  }
  uint64_t value() const { return hash_; }
  // The value as 16 hex digits.
  std::string Hex() const { return fmt::format("{:016x}", hash_); }

 private:
  void Mix(unsigned char c) {
    hash_ ^= c;
    hash_ *= 0x100000001b3ULL;
  }
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_FNV1A_H_
