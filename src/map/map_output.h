// How a job's output reaches forklift map's stdout and stderr: grouped (captured whole,
// written when the job ends), line-buffered (whole lines as they come), or ungrouped (the
// job writes to our descriptors itself); each line optionally prefixed with a tag.
#ifndef FORKLIFT_MAP_MAP_OUTPUT_H_
#define FORKLIFT_MAP_MAP_OUTPUT_H_

#include <mutex>
#include <string>
#include <string_view>

#include "forklift/result.h"
#include "process/output_buffer.h"
#include "process/subprocess.h"

namespace forklift::map {

// GNU parallel's --group (the default), --line-buffer and --ungroup. Not to be confused
// with process::OutputMode, which says how the subprocess layer treats one stream
// (JobOutput::SubprocessMode() maps one to the other).
enum class OutputGrouping { kGroup, kLineBuffer, kUngroup };

// Where finished output goes. Thread-safe: line-buffered jobs write from worker threads,
// and each write of whole lines holds the mutex, so lines never interleave.
class OutputWriter {
 public:
  OutputWriter(int stdout_fd, int stderr_fd) : fds_{stdout_fd, stderr_fd} {}
  // Writes `bytes` (whole lines, or a job's last partial line) to the stream's fd.
  Status Write(process::Stream stream, std::string_view bytes);
  // Writes a captured buffer to the stream's fd.
  Status Write(process::Stream stream, const process::OutputBuffer& buffer);

 private:
  int fds_[2];
  std::mutex mu_;
};

// The output of one job while it runs. For kGroup with a tag, and for kLineBuffer, Run()
// hands chunks to OnChunk (process::OutputMode::kCallback); for kGroup without a tag the
// subprocess layer captures by itself, which is cheaper. Not thread-safe: one job, the
// thread running it.
class JobOutput {
 public:
  JobOutput(OutputGrouping mode, std::string tag, OutputWriter* writer, size_t memory_limit)
      : mode_(mode),
        tag_(std::move(tag)),
        writer_(writer),
        buffers_{process::OutputBuffer(memory_limit), process::OutputBuffer(memory_limit)} {}

  // How the subprocess layer should treat each stream for this job.
  process::OutputMode SubprocessMode() const;
  // The kCallback body: tags lines, and (line-buffered) writes whole lines at once.
  Status OnChunk(process::Stream stream, std::string_view bytes);
  // Ends the job: writes what is still held (grouped: everything, stdout then stderr;
  // line-buffered: an unterminated last line). `captured` holds the subprocess layer's
  // buffers when it captured by itself.
  Status Finish(const process::Completion* captured);

 private:
  int Index(process::Stream s) const { return s == process::Stream::kStdout ? 0 : 1; }

  OutputGrouping mode_;
  std::string tag_;       // "" for no tag; else written with a tab before each line
  OutputWriter* writer_;  // not owned
  process::OutputBuffer buffers_[2];
  std::string pending_[2];  // line-buffered: the partial line not yet written
  bool at_line_start_[2] = {true, true};
};

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_MAP_OUTPUT_H_
