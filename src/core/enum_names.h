// One spelling per value of an enum, in one table, read both ways: the ToString and Parse
// of every state enum (journal item states and run statuses, flow task states) are this,
// so no two places can spell a state differently.
#ifndef FORKLIFT_CORE_ENUM_NAMES_H_
#define FORKLIFT_CORE_ENUM_NAMES_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace forklift::core {

template <class E, size_t N>
using EnumNames = std::array<std::pair<E, std::string_view>, N>;

// The spelling of `value`; "unknown" for a value the table lacks. Thread-safe.
template <class E, size_t N>
constexpr std::string_view NameOf(const EnumNames<E, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "unknown";
}

// The value spelled `text` (exactly); nullopt for any other text. Thread-safe.
template <class E, size_t N>
constexpr std::optional<E> ValueOf(const EnumNames<E, N>& table, std::string_view text) {
  for (const auto& [v, name] : table) {
    if (name == text) return v;
  }
  return std::nullopt;
}

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_ENUM_NAMES_H_
