#include "queue/queue_job.h"

#include <fmt/format.h>

#include <chrono>

#include "forklift/codec.h"

namespace forklift::queue {
namespace {

constexpr uint32_t kJobTag = 0x464b4a31;   // "FKJ1"
constexpr uint32_t kDoneTag = 0x464b4431;  // "FKD1"

template <class T>
void Put(const T& v, std::string& out) {
  Codec<T>::Encode(v, out);
}

template <class T>
Status Get(std::string_view& in, T& v) {
  FORKLIFT_ASSIGN_OR_RETURN(v, Codec<T>::Decode(in));
  return OkStatus();
}

Result<std::string> Captured(const process::OutputBuffer& b, bool& cut) {
  FORKLIFT_ASSIGN_OR_RETURN(std::string all, b.ReadAll());
  if (all.size() > kMaxOutputBytes) {
    all.resize(kMaxOutputBytes);
    cut = true;
  }
  return all;
}

}  // namespace

std::string EncodeJob(const process::SpawnOptions& spawn) {
  std::string out;
  Put(kJobTag, out);
  Put(spawn.argv, out);
  Put(static_cast<int64_t>(spawn.timeout.count()), out);
  Put(spawn.termseq.ToString(), out);
  return out;
}

Result<process::SpawnOptions> DecodeJob(std::string_view in) {
  uint32_t tag = 0;
  int64_t timeout = 0;
  std::string termseq;
  process::SpawnOptions spawn;
  FORKLIFT_RETURN_IF_ERROR(Get(in, tag));
  if (tag != kJobTag) return DataLossError("queue: not a job payload");
  FORKLIFT_RETURN_IF_ERROR(Get(in, spawn.argv));
  FORKLIFT_RETURN_IF_ERROR(Get(in, timeout));
  FORKLIFT_RETURN_IF_ERROR(Get(in, termseq));
  if (spawn.argv.empty()) return DataLossError("queue: a job payload without a command");
  spawn.timeout = Duration(timeout);
  FORKLIFT_ASSIGN_OR_RETURN(spawn.termseq, process::TermSeq::Parse(termseq));
  return spawn;
}

Result<std::string> EncodeCompletion(const process::Completion& c) {
  bool cut = false;
  FORKLIFT_ASSIGN_OR_RETURN(std::string out_text, Captured(c.stdout_output, cut));
  FORKLIFT_ASSIGN_OR_RETURN(std::string err_text, Captured(c.stderr_output, cut));
  if (cut) {
    err_text +=
        fmt::format("\nforklift worker: output cut at {} MiB per stream\n", kMaxOutputBytes >> 20);
  }
  std::string out;
  Put(kDoneTag, out);
  Put(static_cast<int32_t>(c.exit_code), out);
  Put(static_cast<int32_t>(c.signal), out);
  Put(static_cast<uint8_t>(c.timed_out), out);
  Put(static_cast<int32_t>(c.spawn_errno), out);
  Put(static_cast<int64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(c.start.time_since_epoch())
              .count()),
      out);
  Put(static_cast<int64_t>(c.runtime.count()), out);
  Put(c.stdout_bytes, out);
  Put(c.stderr_bytes, out);
  Put(out_text, out);
  Put(err_text, out);
  return out;
}

Result<process::Completion> DecodeCompletion(std::string_view in) {
  uint32_t tag = 0;
  int32_t exit_code = 0, signal = 0, spawn_errno = 0;
  uint8_t timed_out = 0;
  int64_t start_us = 0, runtime = 0;
  std::string out_text, err_text;
  process::Completion c;
  FORKLIFT_RETURN_IF_ERROR(Get(in, tag));
  if (tag != kDoneTag) return DataLossError("queue: not a job outcome");
  FORKLIFT_RETURN_IF_ERROR(Get(in, exit_code));
  FORKLIFT_RETURN_IF_ERROR(Get(in, signal));
  FORKLIFT_RETURN_IF_ERROR(Get(in, timed_out));
  FORKLIFT_RETURN_IF_ERROR(Get(in, spawn_errno));
  FORKLIFT_RETURN_IF_ERROR(Get(in, start_us));
  FORKLIFT_RETURN_IF_ERROR(Get(in, runtime));
  FORKLIFT_RETURN_IF_ERROR(Get(in, c.stdout_bytes));
  FORKLIFT_RETURN_IF_ERROR(Get(in, c.stderr_bytes));
  FORKLIFT_RETURN_IF_ERROR(Get(in, out_text));
  FORKLIFT_RETURN_IF_ERROR(Get(in, err_text));
  c.exit_code = exit_code;
  c.signal = signal;
  c.timed_out = timed_out != 0;
  c.spawn_errno = spawn_errno;
  c.start = std::chrono::system_clock::time_point(std::chrono::microseconds(start_us));
  c.runtime = Duration(runtime);
  FORKLIFT_RETURN_IF_ERROR(c.stdout_output.Append(out_text));
  FORKLIFT_RETURN_IF_ERROR(c.stderr_output.Append(err_text));
  return c;
}

}  // namespace forklift::queue
