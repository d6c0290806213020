#include "map/input_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace forklift::map {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

// Perl's \s, which GNU parallel's --trim removes.
bool IsPerlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string Trimmed(std::string_view s) {
  while (!s.empty() && IsPerlSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsPerlSpace(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// A pattern a regex engine would read as plain text, so that the common "," and "\t"
// separators split with memchr-speed finds instead of the regex engine.
std::optional<std::string> LiteralPattern(const std::string& pattern) {
  if (pattern == "\\t") return std::string("\t");
  if (pattern.empty() || pattern.find_first_of("\\^$.|?*+()[]{}") != std::string::npos) {
    return std::nullopt;
  }
  return pattern;
}

}  // namespace

Result<ColumnSplitter> ColumnSplitter::Create(const std::string& pattern) {
  ColumnSplitter s;
  if (auto literal = LiteralPattern(pattern)) {
    s.literal_ = std::move(*literal);
    return s;
  }
  auto regex = PerlRegex::Compile(pattern);
  if (!regex)
    return InvalidArgumentError("forklift map: bad --colsep regex " + regex.error().message);
  s.regex_ = std::move(*regex);
  return s;
}

Status ColumnSplitter::Split(std::string_view record, std::vector<std::string>* columns) const {
  // GNU parallel does not split an empty record (Perl's split would return no fields).
  if (record.empty()) {
    columns->emplace_back();
    return OkStatus();
  }
  if (!regex_) {
    size_t start = 0;
    while (true) {
      size_t hit = record.find(literal_, start);
      if (hit == std::string_view::npos) break;
      columns->push_back(Trimmed(record.substr(start, hit - start)));
      start = hit + literal_.size();
    }
    columns->push_back(Trimmed(record.substr(start)));
    return OkStatus();
  }
  // Perl's split(/re/, $s, -1): fields between matches, trailing empty fields kept,
  // captured groups inserted, and a zero-width match never where a field starts.
  size_t field_start = 0;
  size_t search_from = 0;
  while (search_from <= record.size()) {
    FORKLIFT_ASSIGN_OR_RETURN(auto m, regex_->Find(record, search_from, {}));
    if (!m) break;
    if (m->end == m->begin && m->begin == field_start) {
      // Perl backtracks into a non-empty match at the same place before moving on.
      FORKLIFT_ASSIGN_OR_RETURN(
          auto longer,
          regex_->Find(record, m->begin, {.anchored = true, .not_empty_at_start = true}));
      if (!longer) {
        search_from = m->begin + 1;
        continue;
      }
      m = std::move(longer);
    }
    columns->push_back(Trimmed(record.substr(field_start, m->begin - field_start)));
    for (const auto& g : m->groups) {
      columns->push_back(g ? Trimmed(record.substr(g->first, g->second - g->first))
                           : std::string());
    }
    field_start = m->end;
    search_from = m->end;
  }
  columns->push_back(Trimmed(record.substr(field_start)));
  return OkStatus();
}

// Records of one source: a ::: list, or a file descriptor read in chunks.
class InputSource::RecordReader {
 public:
  explicit RecordReader(std::vector<std::string> list) : is_list_(true), list_(std::move(list)) {}
  RecordReader(std::string name, int fd, bool owns_fd, char separator)
      : name_(std::move(name)), fd_(fd), owns_fd_(owns_fd), separator_(separator) {}
  ~RecordReader() {
    if (owns_fd_) ::close(fd_);
  }
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Reads the next record into *out; false at the end.
  Result<bool> Read(std::string* out) {
    if (is_list_) {
      if (next_ >= list_.size()) return false;
      *out = std::move(list_[next_++]);
      return true;
    }
    while (true) {
      size_t hit = buffer_.find(separator_, scanned_);
      if (hit != std::string::npos) {
        out->assign(buffer_, start_, hit - start_);
        start_ = scanned_ = hit + 1;
        return true;
      }
      scanned_ = buffer_.size();
      if (eof_) {
        if (start_ >= buffer_.size()) return false;
        out->assign(buffer_, start_);  // the last record had no separator
        start_ = scanned_ = buffer_.size();
        return true;
      }
      // Keep only the partial record, then read more behind it.
      buffer_.erase(0, start_);
      scanned_ -= start_;
      start_ = 0;
      size_t old_size = buffer_.size();
      buffer_.resize(old_size + kReadChunk);
      ssize_t n = ::read(fd_, buffer_.data() + old_size, kReadChunk);
      if (n < 0) {
        buffer_.resize(old_size);
        if (errno == EINTR) continue;
        return InternalError("forklift map: cannot read " + name_ + ": " + std::strerror(errno));
      }
      buffer_.resize(old_size + static_cast<size_t>(n));
      if (n == 0) eof_ = true;
    }
  }

 private:
  bool is_list_ = false;
  std::vector<std::string> list_;
  size_t next_ = 0;

  std::string name_;
  int fd_ = -1;
  bool owns_fd_ = false;
  char separator_ = '\n';
  std::string buffer_;
  size_t start_ = 0;    // where the next record begins in buffer_
  size_t scanned_ = 0;  // buffer_[start_, scanned_) holds no separator
  bool eof_ = false;
};

InputSource::~InputSource() = default;

Result<std::unique_ptr<InputSource>> InputSource::Open(const std::vector<InputSpec>& specs,
                                                       const InputOptions& options, int stdin_fd) {
  std::unique_ptr<InputSource> source(new InputSource());
  source->separator_ = options.null_separated ? '\0' : '\n';
  if (options.colsep) {
    FORKLIFT_ASSIGN_OR_RETURN(ColumnSplitter splitter, ColumnSplitter::Create(*options.colsep));
    source->splitter_ = std::move(splitter);
  }
  std::vector<InputSpec> all = specs;
  if (all.empty()) all.push_back(InputSpec{.kind = InputSpec::Kind::kStdin});

  std::vector<std::unique_ptr<RecordReader>> readers;
  for (const InputSpec& spec : all) {
    switch (spec.kind) {
      case InputSpec::Kind::kArgs: {
        // GNU parallel writes the list to a file, one argument per record, and reads it
        // back: an argument holding the separator becomes several records.
        std::vector<std::string> records;
        for (const std::string& arg : spec.args) {
          size_t start = 0;
          while (true) {
            size_t hit = arg.find(source->separator_, start);
            if (hit == std::string::npos) break;
            records.push_back(arg.substr(start, hit - start));
            start = hit + 1;
          }
          records.push_back(arg.substr(start));
        }
        readers.push_back(std::make_unique<RecordReader>(std::move(records)));
        break;
      }
      case InputSpec::Kind::kStdin:
        readers.push_back(
            std::make_unique<RecordReader>("stdin", stdin_fd, false, source->separator_));
        break;
      case InputSpec::Kind::kFile: {
        if (spec.path == "-") {
          readers.push_back(
              std::make_unique<RecordReader>("stdin", stdin_fd, false, source->separator_));
          break;
        }
        auto fail = [&](int err) {
          return InvalidArgumentError("forklift map: cannot open input file '" + spec.path +
                                      "': " + std::strerror(err));
        };
        int fd = ::open(spec.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return fail(errno);
        struct stat st;
        if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
          ::close(fd);
          return fail(EISDIR);
        }
        readers.push_back(std::make_unique<RecordReader>("input file '" + spec.path + "'", fd, true,
                                                         source->separator_));
        break;
      }
    }
  }

  source->first_ = std::move(readers[0]);
  for (size_t i = 1; i < readers.size(); ++i) {
    std::vector<Record> records;
    std::string record;
    while (true) {
      FORKLIFT_ASSIGN_OR_RETURN(bool got, readers[i]->Read(&record));
      if (!got) break;
      FORKLIFT_ASSIGN_OR_RETURN(Record columns, source->ToColumns(std::move(record)));
      records.push_back(std::move(columns));
      record.clear();
    }
    if (!records.empty()) source->others_have_records_ = true;
    source->others_.push_back(std::move(records));
  }
  // An empty source stands for one empty argument, unless every source is empty
  // (ReadFirst decides that, once it knows whether the first one is).
  for (auto& records : source->others_) {
    if (records.empty()) {
      FORKLIFT_ASSIGN_OR_RETURN(Record columns, source->ToColumns(std::string()));
      records.push_back(std::move(columns));
    }
  }
  source->odometer_.assign(source->others_.size(), 0);
  return source;
}

Result<InputSource::Record> InputSource::ToColumns(std::string record) {
  if (separator_ != '\0' && record.find('\0') != std::string::npos) {
    // No argv can hold a NUL: GNU parallel substitutes the two bytes "\0" and warns.
    std::string replaced;
    replaced.reserve(record.size() + 8);
    for (char c : record) {
      if (c == '\0') {
        replaced += "\\0";
      } else {
        replaced += c;
      }
    }
    record = std::move(replaced);
    replaced_nul_ = true;
  }
  Record columns;
  if (splitter_) {
    FORKLIFT_RETURN_IF_ERROR(splitter_->Split(record, &columns));
  } else {
    columns.push_back(std::move(record));
  }
  return columns;
}

Result<std::optional<InputSource::Record>> InputSource::ReadFirst() {
  std::string record;
  FORKLIFT_ASSIGN_OR_RETURN(bool got, first_->Read(&record));
  bool first_call = !first_started_;
  first_started_ = true;
  if (got) {
    FORKLIFT_ASSIGN_OR_RETURN(Record columns, ToColumns(std::move(record)));
    return std::optional<Record>(std::move(columns));
  }
  // An empty first source still pairs one empty argument with the others' records.
  if (first_call && others_have_records_) {
    FORKLIFT_ASSIGN_OR_RETURN(Record columns, ToColumns(std::string()));
    return std::optional<Record>(std::move(columns));
  }
  return std::optional<Record>();
}

Result<std::optional<std::vector<std::string>>> InputSource::Next() {
  if (done_) return std::nullopt;
  if (!current_first_) {
    FORKLIFT_ASSIGN_OR_RETURN(current_first_, ReadFirst());
    if (!current_first_) {
      done_ = true;
      return std::nullopt;
    }
  }
  if (others_.empty()) {  // one source: no copy
    std::vector<std::string> tuple = std::move(*current_first_);
    current_first_.reset();
    ++count_;
    return std::optional<std::vector<std::string>>(std::move(tuple));
  }
  std::vector<std::string> tuple = *current_first_;
  for (size_t i = 0; i < others_.size(); ++i) {
    const Record& r = others_[i][odometer_[i]];
    tuple.insert(tuple.end(), r.begin(), r.end());
  }
  // Advance: the last source varies fastest; when all wrap, the first moves on.
  bool wrapped = true;
  for (size_t i = others_.size(); i-- > 0;) {
    if (++odometer_[i] < others_[i].size()) {
      wrapped = false;
      break;
    }
    odometer_[i] = 0;
  }
  if (wrapped) current_first_.reset();
  ++count_;
  return std::optional<std::vector<std::string>>(std::move(tuple));
}

}  // namespace forklift::map
