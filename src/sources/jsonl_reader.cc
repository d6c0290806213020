#include "sources/jsonl_reader.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <unordered_map>
#include <utility>

namespace forklift::sources {
namespace {

constexpr size_t kBlockBytes = 1 << 20;
constexpr size_t kMaxUnknownNames = 32;

std::string_view TypeName(simdjson::ondemand::json_type t) {
  switch (t) {
    case simdjson::ondemand::json_type::array: return "an array";
    case simdjson::ondemand::json_type::object: return "an object";
    case simdjson::ondemand::json_type::number: return "a number";
    case simdjson::ondemand::json_type::string: return "a string";
    case simdjson::ondemand::json_type::boolean: return "a boolean";
    case simdjson::ondemand::json_type::null: return "null";
  }
  return "a value";
}

std::string Invalid(simdjson::error_code e) {
  return fmt::format("invalid JSON: {}", simdjson::error_message(e));
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

}  // namespace

bool IsJsonLinesPath(std::string_view path) {
  if (path.ends_with(".gz")) path.remove_suffix(3);
  return path.ends_with(".jsonl") || path.ends_with(".ndjson");
}

struct JsonLinesReader::Parser {
  simdjson::ondemand::parser parser;
  std::string padded;  // the line, then SIMDJSON_PADDING bytes the parser may read
  std::unordered_map<std::string, size_t> column_index;
  std::vector<bool> quoted;
};

JsonLinesReader::JsonLinesReader(std::unique_ptr<ByteSource> source, JsonLinesOptions options)
    : source_(std::move(source)),
      options_(std::move(options)),
      parser_(std::make_unique<Parser>()) {
  for (size_t i = 0; i < options_.columns.size(); ++i) {
    parser_->column_index.emplace(options_.columns[i], i);
  }
  values_.resize(options_.columns.size());
  seen_.resize(options_.columns.size());
  parser_->quoted.resize(options_.columns.size());
}

JsonLinesReader::~JsonLinesReader() = default;

Result<bool> JsonLinesReader::NextLine() {
  long_line_.clear();
  line_too_long_ = false;
  const size_t max = options_.max_record_bytes;
  // Appends part of a line that spans blocks, keeping at most `max` bytes of it.
  auto carry = [&](std::string_view part) {
    if (long_line_.size() + part.size() > max) {
      line_too_long_ = true;
      part = part.substr(0, max - std::min(max, long_line_.size()));
    }
    long_line_.append(part);
  };
  for (;;) {
    if (block_pos_ < block_.size()) {
      const std::string_view rest = std::string_view(block_).substr(block_pos_);
      const size_t nl = rest.find('\n');  // memchr underneath
      if (nl != std::string_view::npos) {
        std::string_view part = rest.substr(0, nl);
        block_pos_ += part.size() + 1;
        if (long_line_.empty() && !line_too_long_ && part.size() <= max) {
          line_ = part;
        } else {
          carry(part);
          line_ = long_line_;
        }
        terminator_ = "\n";
        if (!line_.empty() && line_.back() == '\r' && !line_too_long_) {
          line_.remove_suffix(1);
          terminator_ = "\r\n";
        }
        return true;
      }
      carry(rest);
      block_pos_ = block_.size();
    }
    if (eof_) {
      if (long_line_.empty() && !line_too_long_) return false;
      line_ = long_line_;  // a last line with no final newline
      terminator_ = "";
      return true;
    }
    block_.resize(kBlockBytes);
    FORKLIFT_ASSIGN_OR_RETURN(size_t n, source_->Read(block_.data(), block_.size()));
    block_.resize(n);
    block_pos_ = 0;
    eof_ = n == 0;
  }
}

Result<bool> JsonLinesReader::Next(CsvRecord* rec) {
  for (;;) {
    const uint64_t offset = offset_;
    FORKLIFT_ASSIGN_OR_RETURN(bool got, NextLine());
    if (!got) return false;
    ++line_no_;
    offset_ += line_.size() + terminator_.size();
    if (IsBlank(line_) && !line_too_long_) continue;
    rec->fields.clear();
    rec->raw = {};
    rec->terminator = {};
    rec->first_line = rec->last_line = line_no_;
    rec->offset = offset;
    rec->error = line_too_long_ ? fmt::format("line of more than {} bytes (--max-record-bytes)",
                                              options_.max_record_bytes)
                                : Convert(rec);
    return true;
  }
}

std::string JsonLinesReader::Convert(CsvRecord* rec) {
  namespace od = simdjson::ondemand;
  Parser& p = *parser_;
  p.padded.assign(line_);
  p.padded.append(simdjson::SIMDJSON_PADDING, '\0');
  simdjson::padded_string_view input(p.padded.data(), line_.size(), p.padded.size());
  od::document doc;
  if (auto e = p.parser.iterate(input).get(doc)) return Invalid(e);
  od::object object;
  if (auto e = doc.get_object().get(object)) {
    od::json_type t;
    if (e == simdjson::INCORRECT_TYPE && !doc.type().get(t)) {
      return fmt::format("expected a JSON object, got {}", TypeName(t));
    }
    return Invalid(e);
  }
  std::fill(seen_.begin(), seen_.end(), false);
  for (auto field_or : object) {
    od::field field;
    if (auto e = std::move(field_or).get(field)) return Invalid(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Invalid(e);
    auto it = p.column_index.find(std::string(key));
    if (it == p.column_index.end()) {
      if (unknown_.size() < kMaxUnknownNames || unknown_.contains(std::string(key))) {
        ++unknown_[std::string(key)];
      } else {
        ++unknown_["..."];
      }
      continue;  // the iteration skips its value
    }
    const size_t i = it->second;
    if (seen_[i]) return fmt::format("field '{}' appears twice", key);
    seen_[i] = true;
    od::value v = field.value();
    od::json_type t;
    if (auto e = v.type().get(t)) return Invalid(e);
    std::string_view text;
    bool quoted = true;
    switch (t) {
      case od::json_type::string:
        if (auto e = v.get_string().get(text)) return Invalid(e);
        break;
      case od::json_type::number: {
        text = v.raw_json_token();  // as written; it may run into the blanks after it
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                                 text.back() == '\n')) {
          text.remove_suffix(1);
        }
        // Checked here, not left to the database: "01" or "1." is no JSON number.
        double ignored;
        if (auto e = v.get_double().get(ignored)) return Invalid(e);
        quoted = false;
        break;
      }
      case od::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b)) return Invalid(e);
        text = b ? "true" : "false";
        quoted = false;
        break;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = v.is_null().get(is_null); e || !is_null)
          return Invalid(e ? e : simdjson::N_ATOM_ERROR);
        seen_[i] = false;  // as if absent: NULL below
        continue;
      }
      case od::json_type::object: {
        od::object nested;
        if (auto e = v.get_object().get(nested)) return Invalid(e);
        if (auto e = nested.raw_json().get(text)) return Invalid(e);
        break;
      }
      case od::json_type::array: {
        od::array nested;
        if (auto e = v.get_array().get(nested)) return Invalid(e);
        if (auto e = nested.raw_json().get(text)) return Invalid(e);
        break;
      }
    }
    values_[i].assign(text);
    p.quoted[i] = quoted;
  }
  // At the end of the line the document has no location left; anything else follows the
  // object.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return "invalid JSON: bytes after the object";
  }

  // The CSV record: strings and nested JSON quoted (an empty string stays one), numbers
  // and booleans bare, null and missing fields as null_string bare (NULL).
  csv_.clear();
  rec->fields.resize(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    if (i) csv_.push_back(options_.delimiter);
    if (!seen_[i]) {
      csv_.append(options_.null_string);
      continue;
    }
    if (!p.quoted[i]) {
      csv_.append(values_[i]);
      continue;
    }
    csv_.push_back('"');
    for (char c : values_[i]) {
      if (c == '"') csv_.push_back('"');
      csv_.push_back(c);
    }
    csv_.push_back('"');
  }
  for (size_t i = 0; i < values_.size(); ++i) {
    rec->fields[i] = seen_[i] ? CsvField{.value = values_[i], .quoted = p.quoted[i]}
                              : CsvField{.value = options_.null_string, .quoted = false};
  }
  rec->raw = csv_;
  return {};
}

}  // namespace forklift::sources
