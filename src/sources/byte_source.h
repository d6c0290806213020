// ByteSource: the bytes of one input file for `forklift load`, gunzipped on the fly.
//
// Compression is recognised by content, not by name: a file that starts with the gzip
// magic bytes (1f 8b) is inflated, anything else is passed through as is. Concatenated
// gzip members (`cat a.gz b.gz`, pigz, bgzip) read as one stream. Bytes after a member
// that are not another gzip member are DataLoss rather than being ignored as gzip(1)
// does with a warning: a loader must not drop data silently.
//
// Memory: a fixed input buffer (256 KiB) plus zlib's state, whatever the file's size.
//
// Thread safety: none; use one ByteSource from one thread at a time. Move-only through
// its unique_ptr (it owns a file descriptor).
#ifndef FORKLIFT_SOURCES_BYTE_SOURCE_H_
#define FORKLIFT_SOURCES_BYTE_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/fd.h"
#include "forklift/result.h"

struct z_stream_s;

namespace forklift::sources {

class ByteSource {
 public:
  // Opens `path` for reading; "-" is standard input (duplicated, so destroying the
  // ByteSource leaves fd 0 open). Reads the first bytes to tell gzip from plain.
  // Success: a source positioned at the first (decompressed) byte.
  // Failure: NotFound "cannot open 'PATH': No such file or directory" for a missing file
  // or directory component; InvalidArgument naming the path for a directory or an
  // unreadable file (with strerror); DataLoss naming the path when the first read fails.
  static Result<std::unique_ptr<ByteSource>> Open(const std::string& path);

  // Fills `buf` with up to `n` bytes (n > 0): the count (at least 1), 0 at the end of the
  // stream, or an error. Called from the thread that reads the ByteSource.
  using Pull = std::function<Result<size_t>(char* buf, size_t n)>;

  // A source over bytes another producer makes (a query's COPY TO STDOUT, an SQLite
  // statement's rows), so that the CSV reader, the chunker's checksums and dead letters
  // read them as they read a file. `name` is the path() messages and chunks show. The bytes
  // are passed through as they are (no gzip detection); file_size() is 0. After `pull`
  // returns 0 it is not called again; an error from it keeps its code (a query the server
  // refused is not lost data), its message prefixed "NAME: ", and is sticky as for a file.
  static std::unique_ptr<ByteSource> FromPull(std::string name, Pull pull);

  ~ByteSource();
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // Reads up to `n` decompressed bytes into `buf`.
  // Success: the number of bytes read, at least 1 when n > 0 and the input is not over;
  // 0 at the end of the input (and on every later call).
  // Failure: DataLoss "PATH: ..." for a read error (strerror), a corrupt gzip stream
  // (zlib's message) or a truncated one; the source is then unusable and later calls
  // fail the same way.
  Result<size_t> Read(char* buf, size_t n);

  // Bytes consumed from the file so far: compressed bytes for a gzip file, for progress
  // and ETA against file_size(); for a plain file, the bytes Read has returned.
  uint64_t source_bytes_read() const;
  // Size of the file at Open when it is a regular one (stdin redirected from a file
  // included); 0 when unknown (a pipe, a terminal, a device).
  uint64_t file_size() const { return file_size_; }
  const std::string& path() const { return path_; }
  // Whether the content is gzip.
  bool compressed() const { return stream_ != nullptr; }

 private:
  ByteSource(std::string path, int fd, uint64_t file_size);

  // One read() of more file bytes after those still buffered (the buffer is not full);
  // sets input_eof_ at the end.
  Status FillInput();
  Result<size_t> ReadPlain(char* buf, size_t n);
  Result<size_t> ReadCompressed(char* buf, size_t n);
  // Records the sticky error "PATH: what" and returns it as DataLoss.
  tl::unexpected<Error> Fail(std::string what);

  std::string path_;
  core::UniqueFd fd_;
  uint64_t file_size_ = 0;
  std::unique_ptr<char[]> input_;
  size_t input_begin_ = 0;  // next unconsumed byte of input_ (plain mode)
  size_t input_end_ = 0;    // end of the valid bytes of input_
  bool input_eof_ = false;
  uint64_t file_bytes_read_ = 0;  // bytes read() returned
  uint64_t plain_bytes_out_ = 0;
  std::unique_ptr<z_stream_s> stream_;  // set for gzip content
  bool member_ended_ = false;           // inflate reached the end of a gzip member
  bool done_ = false;
  std::string error_;  // sticky: once set, every Read fails with it
  Pull pull_;          // set for FromPull sources
  std::optional<Error> pull_error_;
};

}  // namespace forklift::sources

#endif  // FORKLIFT_SOURCES_BYTE_SOURCE_H_
