#include "flow/sql_task.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/format_duration.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_dsn.h"
#include "sqlite/sqlite.h"

namespace forklift::flow {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The statement's words, upper-cased, comments and quoting aside (enough to classify it).
std::vector<std::string> Words(std::string_view s, size_t max) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size() && words.size() < max) {
    if (s.compare(i, 2, "--") == 0) {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (s.compare(i, 2, "/*") == 0) {
      size_t end = s.find("*/", i + 2);
      i = end == std::string_view::npos ? s.size() : end + 2;
    } else if (std::isalpha(static_cast<unsigned char>(s[i])) || s[i] == '_') {
      size_t start = i;
      while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
      words.push_back(Upper(s.substr(start, i - start)));
    } else {
      ++i;
    }
  }
  return words;
}

// Runs `run` while a thread waits for the deadline or the stop and then calls `cancel`
// once; reports which of the two fired.
template <class Run, class Cancel>
void WithCanceller(const SqlTaskOptions& o, bool& timed_out, bool& cancelled, Run run,
                   Cancel cancel) {
  std::mutex mu;
  std::condition_variable_any cv;
  bool done = false;
  std::atomic<int> why{0};  // 1 timed out, 2 stopped
  std::thread canceller([&] {
    std::unique_lock lock(mu);
    std::stop_token stop = o.stop;
    bool ended;
    if (o.timeout) {
      ended = cv.wait_for(lock, stop, *o.timeout, [&] { return done; });
    } else {
      ended = cv.wait(lock, stop, [&] { return done; });
    }
    if (ended) return;
    why = stop.stop_requested() ? 2 : 1;
    cancel();
  });
  run([&] { return why.load(); });
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  canceller.join();
  timed_out = why == 1;
  cancelled = why == 2;
}

// `why`: 1 the timeout passed, 2 a stop.
std::string Interrupted(const SqlTaskOptions& o, int why, const std::string& at) {
  if (why == 1) {
    return fmt::format("{}: timed out after {}; the statement was cancelled on the server", at,
                       core::FormatDuration(*o.timeout));
  }
  return at + ": cancelled (forklift was told to stop); the statement was cancelled";
}

SqlTaskResult RunOnPostgres(const SqlTaskOptions& o, const std::vector<SqlStatement>& stmts,
                            bool one_transaction) {
  SqlTaskResult r;
  auto dsn = sinks::ParsePgDsn(o.dsn);
  if (!dsn) {
    std::string_view m = dsn.error().message;
    if (m.starts_with("--to: ")) m.remove_prefix(6);  // the load option's prefix
    r.error = fmt::format("{}: the database URL: {}", o.source, m);
    return r;
  }
  auto conn = sinks::PgConnection::Connect(*dsn);
  if (!conn) {
    r.error = conn.error().message;
    return r;
  }
  sinks::PgConnection& c = **conn;
  WithCanceller(
      o, r.timed_out, r.cancelled,
      [&](auto interrupted) {
        if (one_transaction) {
          if (auto s = c.Exec("BEGIN"); !s) {
            r.error = s.error().message;
            return;
          }
        }
        for (const SqlStatement& st : stmts) {
          std::string at = fmt::format("{}:{}", o.source, st.line);
          auto tag = c.ExecCommand(st.text);
          if (!tag) {
            int why = interrupted();
            r.error = why ? Interrupted(o, why, at) : at + ": " + tag.error().message;
            if (one_transaction) (void)c.Exec("ROLLBACK");
            return;
          }
          if (o.log) o.log(fmt::format("{}: {}", at, *tag));
          r.tags.push_back(std::move(*tag));
        }
        if (one_transaction) {
          if (auto s = c.Exec("COMMIT"); !s) {
            r.error = s.error().message;
            return;
          }
        }
        r.ok = true;
      },
      [&] { c.Cancel(); });
  if (!r.ok && (r.timed_out || r.cancelled) && r.error.find("cancelled") == std::string::npos) {
    r.error = Interrupted(o, r.timed_out ? 1 : 2, o.source);
  }
  return r;
}

SqlTaskResult RunOnSqlite(const SqlTaskOptions& o, const std::vector<SqlStatement>& stmts,
                          bool one_transaction) {
  SqlTaskResult r;
  std::string path = o.dsn.substr(std::string_view("sqlite:").size());
  // No CREATE (the default): a maintenance task on a database that is not there is a
  // mistake to report.
  auto opened = sqlite::Db::Open(path, {.busy_timeout_ms = 5000, .label = "sqlite:" + path});
  if (!opened) {
    r.error = fmt::format("cannot open sqlite:{}: {}", path, opened.error().message);
    return r;
  }
  sqlite::Db& db = *opened;
  // SQLite's message alone ("" on success): the caller puts the file and line before it.
  auto exec = [&](const std::string& sql, std::string* tag) -> std::string {
    auto stmt = db.Prepare(sql);
    if (!stmt) return db.Message();
    sqlite::StatementUse use(*stmt);
    int rc;
    int64_t rows = 0;
    while ((rc = use.Step()) == SQLITE_ROW) ++rows;
    std::string err = rc == SQLITE_DONE ? "" : db.Message();
    if (tag && err.empty()) {
      std::vector<std::string> w = Words(sql, 1);
      std::string verb = w.empty() ? "" : w[0];
      if (verb == "INSERT" || verb == "UPDATE" || verb == "DELETE" || verb == "REPLACE") {
        *tag = fmt::format("{} {}", verb, db.Changes());
      } else if (verb == "SELECT" || verb == "WITH" || verb == "PRAGMA") {
        *tag = fmt::format("{} {}", verb, rows);
      } else {
        *tag = verb;
      }
    }
    return err;
  };
  WithCanceller(
      o, r.timed_out, r.cancelled,
      [&](auto interrupted) {
        if (one_transaction) {
          if (std::string e = exec("BEGIN", nullptr); !e.empty()) {
            r.error = e;
            return;
          }
        }
        for (const SqlStatement& st : stmts) {
          std::string at = fmt::format("{}:{}", o.source, st.line);
          std::string tag;
          if (std::string e = exec(st.text, &tag); !e.empty()) {
            int why = interrupted();
            r.error = why ? Interrupted(o, why, at) : at + ": " + e;
            if (one_transaction) exec("ROLLBACK", nullptr);
            return;
          }
          if (o.log) o.log(fmt::format("{}: {}", at, tag));
          r.tags.push_back(std::move(tag));
        }
        if (one_transaction) {
          if (std::string e = exec("COMMIT", nullptr); !e.empty()) {
            r.error = e;
            return;
          }
        }
        r.ok = true;
      },
      [&] { db.Interrupt(); });
  return r;
}

}  // namespace

std::vector<SqlStatement> SplitSqlStatements(std::string_view text) {
  std::vector<SqlStatement> out;
  std::string current;
  int line = 1, start_line = 1;
  bool has_code = false;  // the current statement holds more than blanks and comments
  size_t i = 0;
  auto take = [&](size_t n) {
    for (size_t k = 0; k < n && i < text.size(); ++k, ++i) {
      if (text[i] == '\n') ++line;
      current += text[i];
    }
  };
  while (i < text.size()) {
    char c = text[i];
    if (!has_code && c != ';' && !std::isspace(static_cast<unsigned char>(c)) &&
        text.compare(i, 2, "--") != 0 && text.compare(i, 2, "/*") != 0) {
      has_code = true;
      start_line = line;
    }
    if (text.compare(i, 2, "--") == 0) {
      size_t end = text.find('\n', i);
      take((end == std::string_view::npos ? text.size() : end) - i);
    } else if (text.compare(i, 2, "/*") == 0) {
      int depth = 0;
      do {
        if (text.compare(i, 2, "/*") == 0) {
          ++depth;
          take(2);
        } else if (text.compare(i, 2, "*/") == 0) {
          --depth;
          take(2);
        } else {
          take(1);
        }
      } while (depth > 0 && i < text.size());
    } else if (c == '\'' || c == '"') {
      take(1);
      while (i < text.size()) {
        if (text[i] == c && i + 1 < text.size() && text[i + 1] == c) {
          take(2);  // '' or "" inside
        } else if (text[i] == c) {
          take(1);
          break;
        } else {
          take(1);
        }
      }
    } else if (c == '$') {
      // $tag$ ... $tag$, where tag is empty or an identifier not starting with a digit.
      size_t j = i + 1;
      while (j < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_'))
        ++j;
      bool is_tag = j < text.size() && text[j] == '$' &&
                    (j == i + 1 || !std::isdigit(static_cast<unsigned char>(text[i + 1])));
      if (!is_tag) {
        take(1);
        continue;
      }
      std::string tag(text.substr(i, j - i + 1));
      take(tag.size());
      size_t end = text.find(tag, i);
      take((end == std::string_view::npos ? text.size() : end + tag.size()) - i);
    } else if (c == ';') {
      ++i;
      if (has_code) out.push_back({current, start_line});
      current.clear();
      has_code = false;
    } else {
      take(1);
    }
  }
  if (has_code) out.push_back({current, start_line});
  for (SqlStatement& s : out) {
    // Leading blanks and comments stay (the server ignores them); trailing blanks go.
    while (!s.text.empty() && std::isspace(static_cast<unsigned char>(s.text.back()))) {
      s.text.pop_back();
    }
  }
  return out;
}

bool NeedsOwnTransaction(std::string_view statement) {
  std::vector<std::string> w = Words(statement, 6);
  if (w.empty()) return false;
  if (w[0] == "VACUUM") return true;
  if (w[0] == "ALTER" && w.size() > 1 && w[1] == "SYSTEM") return true;
  if ((w[0] == "CREATE" || w[0] == "DROP") && w.size() > 1 &&
      (w[1] == "DATABASE" || w[1] == "TABLESPACE")) {
    return true;
  }
  bool concurrently = std::find(w.begin(), w.end(), "CONCURRENTLY") != w.end();
  if (w[0] == "REINDEX" && concurrently) return true;
  if ((w[0] == "CREATE" || w[0] == "DROP") && concurrently) return true;  // ... INDEX CONCURRENTLY
  return false;
}

SqlTaskResult RunSqlTask(const SqlTaskOptions& options) {
  std::vector<SqlStatement> stmts = SplitSqlStatements(options.text);
  if (stmts.empty()) {
    SqlTaskResult r;
    r.error = options.source + ": no SQL statement";
    return r;
  }
  // One transaction unless a statement may not run in one: then each on its own (the
  // order stays; what committed before a failure stays committed, as with psql).
  bool own = std::any_of(stmts.begin(), stmts.end(),
                         [](const SqlStatement& s) { return NeedsOwnTransaction(s.text); });
  bool one_transaction = !own && stmts.size() > 1;
  SqlTaskResult r = options.dsn.starts_with("sqlite:")
                        ? RunOnSqlite(options, stmts, one_transaction)
                        : RunOnPostgres(options, stmts, one_transaction);
  // A failed transaction kept nothing: its tags ("INSERT 0 100") must not read as done.
  if (!r.ok && one_transaction) {
    for (std::string& tag : r.tags) tag += " (rolled back)";
  }
  return r;
}

}  // namespace forklift::flow
