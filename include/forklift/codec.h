// A small byte codec for values that cross a process boundary (process isolation) and for
// item keys in the journal. Provided for arithmetic types, std::string, std::monostate,
// std::pair, std::vector and std::optional of codec types; give your own type one by
// specializing Codec:
//
//   template <> struct forklift::Codec<MyItem> {
//     static void Encode(const MyItem& v, std::string& out);        // appends
//     static Result<MyItem> Decode(std::string_view& in);           // consumes
//   };
//
// Encoding is native-endian: both sides are the same program on the same machine.
// Thread safety: stateless.
#ifndef FORKLIFT_CODEC_H_
#define FORKLIFT_CODEC_H_

#include <concepts>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "forklift/result.h"

namespace forklift {

template <class T>
struct Codec;

template <class T>
concept HasCodec = requires(const T& v, std::string& out, std::string_view& in) {
  Codec<T>::Encode(v, out);
  { Codec<T>::Decode(in) } -> std::same_as<Result<T>>;
};
template <class T>
inline constexpr bool kHasCodec = HasCodec<T>;

namespace codec_internal {
inline tl::unexpected<Error> Truncated() { return DataLossError("codec: truncated input"); }
}  // namespace codec_internal

template <class T>
requires std::is_arithmetic_v<T>
struct Codec<T> {
  static void Encode(const T& v, std::string& out) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static Result<T> Decode(std::string_view& in) {
    if (in.size() < sizeof(T)) return codec_internal::Truncated();
    T v;
    std::memcpy(&v, in.data(), sizeof v);
    in.remove_prefix(sizeof v);
    return v;
  }
};

template <>
struct Codec<std::string> {
  static void Encode(const std::string& v, std::string& out) {
    Codec<uint64_t>::Encode(v.size(), out);
    out.append(v);
  }
  static Result<std::string> Decode(std::string_view& in) {
    FORKLIFT_ASSIGN_OR_RETURN(uint64_t n, Codec<uint64_t>::Decode(in));
    if (in.size() < n) return codec_internal::Truncated();
    std::string v(in.substr(0, n));
    in.remove_prefix(n);
    return v;
  }
};

template <>
struct Codec<std::monostate> {
  static void Encode(const std::monostate&, std::string&) {}
  static Result<std::monostate> Decode(std::string_view&) { return std::monostate{}; }
};

template <class A, class B>
requires HasCodec<A> && HasCodec<B>
struct Codec<std::pair<A, B>> {
  static void Encode(const std::pair<A, B>& v, std::string& out) {
    Codec<A>::Encode(v.first, out);
    Codec<B>::Encode(v.second, out);
  }
  static Result<std::pair<A, B>> Decode(std::string_view& in) {
    FORKLIFT_ASSIGN_OR_RETURN(A a, Codec<A>::Decode(in));
    FORKLIFT_ASSIGN_OR_RETURN(B b, Codec<B>::Decode(in));
    return std::pair<A, B>(std::move(a), std::move(b));
  }
};

template <class T>
requires HasCodec<T>
struct Codec<std::vector<T>> {
  static void Encode(const std::vector<T>& v, std::string& out) {
    Codec<uint64_t>::Encode(v.size(), out);
    for (const T& x : v) Codec<T>::Encode(x, out);
  }
  static Result<std::vector<T>> Decode(std::string_view& in) {
    FORKLIFT_ASSIGN_OR_RETURN(uint64_t n, Codec<uint64_t>::Decode(in));
    std::vector<T> v;
    // Every element takes at least one byte unless it is empty, so a corrupt count cannot
    // make us reserve more than the input could hold.
    v.reserve(n < in.size() ? n : in.size());
    for (uint64_t i = 0; i < n; ++i) {
      FORKLIFT_ASSIGN_OR_RETURN(T x, Codec<T>::Decode(in));
      v.push_back(std::move(x));
    }
    return v;
  }
};

template <class T>
requires HasCodec<T>
struct Codec<std::optional<T>> {
  static void Encode(const std::optional<T>& v, std::string& out) {
    out.push_back(v ? 1 : 0);
    if (v) Codec<T>::Encode(*v, out);
  }
  static Result<std::optional<T>> Decode(std::string_view& in) {
    if (in.empty()) return codec_internal::Truncated();
    bool present = in[0] != 0;
    in.remove_prefix(1);
    if (!present) return std::optional<T>();
    FORKLIFT_ASSIGN_OR_RETURN(T v, Codec<T>::Decode(in));
    return std::optional<T>(std::move(v));
  }
};

// Decodes a whole buffer; DataLoss when bytes are left over or missing.
template <HasCodec T>
Result<T> DecodeAll(std::string_view in) {
  FORKLIFT_ASSIGN_OR_RETURN(T v, Codec<T>::Decode(in));
  if (!in.empty()) return DataLossError("codec: trailing bytes");
  return v;
}

// Result<T> on the wire: a tag byte, then the value or (code, message).
template <HasCodec T>
void EncodeResult(const Result<T>& r, std::string& out) {
  if (r) {
    out.push_back(0);
    Codec<T>::Encode(*r, out);
  } else {
    out.push_back(1);
    Codec<int32_t>::Encode(static_cast<int32_t>(r.error().code), out);
    Codec<std::string>::Encode(r.error().message, out);
  }
}

template <HasCodec T>
Result<Result<T>> DecodeResult(std::string_view in) {
  if (in.empty()) return codec_internal::Truncated();
  char tag = in[0];
  in.remove_prefix(1);
  if (tag == 0) {
    FORKLIFT_ASSIGN_OR_RETURN(T v, Codec<T>::Decode(in));
    if (!in.empty()) return DataLossError("codec: trailing bytes");
    return Result<T>(std::move(v));
  }
  FORKLIFT_ASSIGN_OR_RETURN(int32_t code, Codec<int32_t>::Decode(in));
  FORKLIFT_ASSIGN_OR_RETURN(std::string message, Codec<std::string>::Decode(in));
  if (code < 1 || code > static_cast<int32_t>(ErrorCode::kDataLoss)) {
    return DataLossError("codec: bad error code " + std::to_string(code));
  }
  return Result<T>(tl::unexpected(Error{static_cast<ErrorCode>(code), std::move(message)}));
}

// An item type may name its own journal key with a member `std::string CheckpointKey() const`
// (map's jobs key by a hash of their arguments and command, not their position).
template <class T>
concept HasCheckpointKeyMember = requires(const T& v) {
  { v.CheckpointKey() } -> std::convertible_to<std::string>;
};

// The journal key of an item: its CheckpointKey(), the string itself, the decimal form of a
// number, or the item's codec bytes for other types.
template <class T>
concept HasItemKey = HasCheckpointKeyMember<T> || std::same_as<T, std::string> ||
    std::is_arithmetic_v<T> || HasCodec<T>;
template <class T>
inline constexpr bool kHasItemKey = HasItemKey<T>;

template <HasItemKey T>
std::string ItemKey(const T& item) {
  if constexpr (HasCheckpointKeyMember<T>) {
    return std::string(item.CheckpointKey());
  } else if constexpr (std::same_as<T, std::string>) {
    return item;
  } else if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(item);
  } else {
    std::string out;
    Codec<T>::Encode(item, out);
    return out;
  }
}

}  // namespace forklift

#endif  // FORKLIFT_CODEC_H_
