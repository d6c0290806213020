// Checksum: a running XXH3 64-bit hash of bytes, e.g. of a source file's records so that
// a resumed `forklift load` can tell whether the file changed under its checkpoints.
// Wraps xxhash's streaming API; feeding the bytes in any split gives the same value as
// hashing them at once (XXH3_64bits with seed 0).
//
// Thread safety: none; one Checksum per thread. Movable, not copyable; a moved-from
// Checksum may only be destroyed or assigned to.
#ifndef FORKLIFT_SOURCES_CHECKSUM_H_
#define FORKLIFT_SOURCES_CHECKSUM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct XXH3_state_s;

namespace forklift::sources {

class Checksum {
 public:
  // The checksum of no bytes (XXH3_64bits("") = 2d06800538d394c2).
  // Throws std::bad_alloc when the hash state cannot be allocated, like any allocation.
  Checksum();
  ~Checksum();
  Checksum(Checksum&& other) noexcept;
  Checksum& operator=(Checksum&& other) noexcept;
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;

  // Appends bytes to the hashed stream.
  void Add(std::string_view bytes);
  // The hash of every byte added since construction or Reset(); adding more afterwards
  // continues the same stream.
  uint64_t Value() const;
  // Value() as 16 lowercase hex digits, zero-padded.
  std::string Hex() const;
  // Back to the checksum of no bytes.
  void Reset();

 private:
  struct StateDeleter {
    void operator()(XXH3_state_s* state) const;
  };
  std::unique_ptr<XXH3_state_s, StateDeleter> state_;
};

}  // namespace forklift::sources

#endif  // FORKLIFT_SOURCES_CHECKSUM_H_
