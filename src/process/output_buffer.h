// OutputBuffer: the captured stdout or stderr of one subprocess, bounded in memory.
// Bytes stay in RAM up to `memory_limit`; the append that would pass it moves everything
// to an anonymous temporary file and later appends go there, so RAM stays at most
// memory_limit bytes whatever the child prints (DESIGN.md: memory is a function of the
// configuration, never of the input). The file is created already unlinked
// (O_TMPFILE, else mkstemp + unlink at once), so nothing is left on disk even when this
// program is killed with SIGKILL.
//
// Binary-safe: bytes are bytes (NULs, no newline at the end, lines of any length).
//
// Thread safety: const methods may run concurrently with each other (the file is read
// with pread, which leaves the append offset alone); anything else needs external
// synchronization. Move-only (it may own a file descriptor).
#ifndef FORKLIFT_PROCESS_OUTPUT_BUFFER_H_
#define FORKLIFT_PROCESS_OUTPUT_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.h"
#include "forklift/result.h"

namespace forklift::process {

class OutputBuffer {
 public:
  static constexpr size_t kDefaultMemoryLimit = size_t{1} << 20;  // 1 MiB

  // `spill_dir` is where the temporary file goes; empty means $TMPDIR, or /tmp when
  // TMPDIR is unset or empty. Nothing is allocated or created until the first Append.
  explicit OutputBuffer(size_t memory_limit = kDefaultMemoryLimit, std::string spill_dir = {});
  // Closes the temporary file, which the kernel then frees.
  ~OutputBuffer();
  OutputBuffer(OutputBuffer&& other) noexcept;
  OutputBuffer& operator=(OutputBuffer&& other) noexcept;
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  // Adds bytes at the end.
  // Success: size() grew by bytes.size().
  // Failure: Internal naming the directory when the temporary file cannot be created, or
  // naming the error when writing to it fails (ENOSPC); the bytes of the failed call are
  // then not in the buffer, earlier ones are.
  Status Append(std::string_view bytes);

  // Bytes appended since construction or the last Clear().
  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // True once the contents live in the temporary file.
  bool spilled() const { return fd_.valid(); }
  size_t memory_limit() const { return memory_limit_; }
  // RAM the buffer holds now (allocated capacity, not just used bytes); never above
  // memory_limit(), 0 once spilled.
  size_t memory_used() const { return ram_.capacity(); }

  // Writes the whole contents to `fd` in chunks of at most 64 KiB (a pipe, a file, a
  // terminal; a non-blocking fd is waited on with poll).
  // Success: every byte was written. Failure: Internal naming the error (EPIPE when the
  // reader went away: the caller decides about SIGPIPE, which this does not block).
  Status WriteTo(int fd) const;

  // The whole contents as one string; for tests and outputs known to be small.
  // Failure: Internal when reading the temporary file fails.
  Result<std::string> ReadAll() const;

  // Drops the contents, the RAM and the temporary file; the buffer is as new.
  void Clear();

 private:
  Status Spill(std::string_view more);
  Status ReadAt(uint64_t offset, char* out, size_t n) const;

  size_t memory_limit_;
  std::string spill_dir_;
  // A vector, not a string: vector::reserve allocates exactly what is asked, which keeps
  // the capacity under memory_limit_ (std::string may round up to twice the old one).
  std::vector<char> ram_;
  uint64_t size_ = 0;
  core::UniqueFd fd_;  // the temporary file once spilled
};

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_OUTPUT_BUFFER_H_
