#include "load/transform_stage.h"

#include <fmt/format.h>

#include <exception>
#include <string>
#include <utility>

namespace forklift::load {

TransformStage::TransformStage(int workers, Transform transform, Emit emit)
    : transform_(std::move(transform)),
      emit_(std::move(emit)),
      window_(2 * static_cast<size_t>(workers < 1 ? 1 : workers)) {
  for (int i = 0; i < (workers < 1 ? 1 : workers); ++i) threads_.emplace_back([this] { Work(); });
}

TransformStage::~TransformStage() { (void)Finish(); }

void TransformStage::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return closing_ || !todo_.empty(); });
    if (todo_.empty()) return;  // closing, and nothing left
    auto [seq, chunk] = std::move(todo_.front());
    todo_.pop_front();
    const bool failed = error_.has_value();
    lock.unlock();
    std::optional<sinks::Chunk> out;
    std::optional<Error> error;
    if (!failed) {  // after a failure, later chunks are dropped, not transformed
      const std::string where = fmt::format("chunk {} ({} lines {}-{})", chunk.number, chunk.source,
                                            chunk.first_line, chunk.last_line);
      try {
        out = transform_(std::move(chunk));
      } catch (const std::exception& e) {
        error = Error{ErrorCode::kInternal,
                      fmt::format("{}: transform stopped by an exception: {}", where, e.what())};
      } catch (...) {
        error = Error{ErrorCode::kInternal,
                      fmt::format("{}: transform stopped by an exception that is not a "
                                  "std::exception",
                                  where)};
      }
    }
    lock.lock();
    if (error && !error_) error_ = std::move(error);
    done_.emplace(seq, error_ ? std::nullopt : std::move(out));
    done_cv_.notify_all();
  }
}

void TransformStage::EmitReady(std::unique_lock<std::mutex>& lock) {
  while (!done_.empty() && done_.begin()->first == next_out_) {
    std::optional<sinks::Chunk> c = std::move(done_.begin()->second);
    done_.erase(done_.begin());
    ++next_out_;
    if (!c || error_) continue;
    lock.unlock();
    emit_(std::move(*c));  // may block on a full writer queue: the workers go on meanwhile
    lock.lock();
  }
}

Status TransformStage::ErrorLocked() const {
  if (error_) return tl::unexpected(*error_);
  return {};
}

Status TransformStage::Push(sinks::Chunk&& chunk) {
  std::unique_lock lock(mu_);
  for (;;) {
    EmitReady(lock);
    if (next_in_ - next_out_ < window_) break;
    done_cv_.wait(lock, [&] { return !done_.empty() && done_.begin()->first == next_out_; });
  }
  if (error_) return ErrorLocked();
  todo_.emplace_back(next_in_++, std::move(chunk));
  work_cv_.notify_one();
  return {};
}

Status TransformStage::Finish() {
  if (finished_) {
    std::lock_guard lock(mu_);
    return ErrorLocked();
  }
  finished_ = true;
  {
    std::unique_lock lock(mu_);
    for (;;) {
      EmitReady(lock);
      if (next_out_ == next_in_) break;
      done_cv_.wait(lock, [&] { return !done_.empty() && done_.begin()->first == next_out_; });
    }
    closing_ = true;
    work_cv_.notify_all();
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  std::lock_guard lock(mu_);
  return ErrorLocked();
}

}  // namespace forklift::load
