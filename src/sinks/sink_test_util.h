// Helpers shared by the sinks' unit tests.
#ifndef FORKLIFT_SINKS_SINK_TEST_UTIL_H_
#define FORKLIFT_SINKS_SINK_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sinks/chunk.h"
#include "sinks/sink.h"

namespace forklift::sinks {

// A chunk of CSV records (no header), lines 1..n of "in.csv".
inline Chunk MakeChunk(int64_t number, const std::vector<std::string>& records) {
  Chunk c;
  c.number = number;
  c.source = "in.csv";
  for (const std::string& r : records) {
    c.rows.push_back({.offset = static_cast<uint32_t>(c.data.size()),
                      .size = static_cast<uint32_t>(r.size()),
                      .line = c.rows.size() + 1});
    c.data += r + "\n";
  }
  c.first_line = 1;
  c.last_line = records.size();
  c.checksum = "sum-" + std::to_string(number);
  return c;
}

// The sink of an opened `target`, its ledger ensured; nullptr, failing the test, when a
// step fails.
inline std::unique_ptr<Sink> SinkOf(Result<std::unique_ptr<Target>> target) {
  EXPECT_TRUE(target) << target.error().ToString();
  if (!target) return nullptr;
  EXPECT_TRUE((*target)->EnsureLedger());
  auto sink = (*target)->OpenSink();
  EXPECT_TRUE(sink) << sink.error().ToString();
  return sink ? std::move(*sink) : nullptr;
}

// Writes `chunk` through `sink`, recording no dead letters.
inline Result<ChunkWriteResult> WriteNoLetters(Sink& sink, const Chunk& chunk) {
  return sink.WriteChunk(chunk, [](std::span<const RejectedRow>) { return Status(); });
}

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_SINK_TEST_UTIL_H_
