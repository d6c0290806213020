#include "map/map_options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/duration_parse.h"
#include "map/command_template.h"
#include "sinks/pg_dsn.h"

namespace forklift::map {
namespace {

enum class Opt {
  kJobs,
  kKeepOrder,
  kNoKeepOrder,
  kLineBuffer,
  kUngroup,
  kGroup,
  kTag,
  kTagString,
  kJoblog,
  kResume,
  kResumeFailed,
  kRetryFailed,
  kRetries,
  kRetryDelay,
  kTimeout,
  kTermseq,
  kHalt,
  kBar,
  kEta,
  kProgress,
  kDryRun,
  kDelay,
  kResults,
  kColsep,
  kNull,
  kQuote,
  kShellQuote,
  kArgFile,
  kJournal,
  kRunId,
  kQueue,
  kQueueSchema,
  kQueueSlice,
  kWillCite,
  kHelp,
};

struct OptionDef {
  std::string_view long_names;  // '|'-separated, GNU parallel's spellings
  char short_name;              // 0: none
  bool takes_value;
  Opt id;
};

constexpr OptionDef kOptions[] = {
    {"jobs|max-procs|maxprocs", 'j', true, Opt::kJobs},
    {"", 'P', true, Opt::kJobs},
    {"keep-order|keeporder", 'k', false, Opt::kKeepOrder},
    {"no-keep-order|nokeeporder|nok|no-k", 0, false, Opt::kNoKeepOrder},
    {"line-buffer|line-buffered|linebuffer|linebuffered|lb", 0, false, Opt::kLineBuffer},
    {"ungroup", 'u', false, Opt::kUngroup},
    {"group", 0, false, Opt::kGroup},
    {"tag", 0, false, Opt::kTag},
    {"tag-string|tagstring", 0, true, Opt::kTagString},
    {"joblog|jl", 0, true, Opt::kJoblog},
    {"resume", 0, false, Opt::kResume},
    {"resume-failed|resumefailed", 0, false, Opt::kResumeFailed},
    {"retry-failed|retryfailed", 0, false, Opt::kRetryFailed},
    {"retries", 0, true, Opt::kRetries},
    {"retry-delay", 0, true, Opt::kRetryDelay},
    {"timeout", 0, true, Opt::kTimeout},
    {"term-seq|termseq", 0, true, Opt::kTermseq},
    {"halt-on-error|haltonerror|halt", 0, true, Opt::kHalt},
    {"bar", 0, false, Opt::kBar},
    {"eta", 0, false, Opt::kEta},
    {"progress", 0, false, Opt::kProgress},
    {"dry-run|dryrun|dr", 0, false, Opt::kDryRun},
    {"delay", 0, true, Opt::kDelay},
    {"results|result|res", 0, true, Opt::kResults},
    {"col-sep|colsep", 'C', true, Opt::kColsep},
    {"null", '0', false, Opt::kNull},
    {"quote", 'q', false, Opt::kQuote},
    {"shell-quote|shellquote|shell_quote", 0, false, Opt::kShellQuote},
    {"arg-file|argfile", 'a', true, Opt::kArgFile},
    {"journal", 0, true, Opt::kJournal},
    {"run-id", 0, true, Opt::kRunId},
    {"queue", 0, true, Opt::kQueue},
    {"queue-schema", 0, true, Opt::kQueueSchema},
    {"queue-slice", 0, true, Opt::kQueueSlice},
    // Accepted and ignored: scripts written for GNU parallel pass it to silence its
    // citation notice.
    {"will-cite|willcite|nn|nonotice|no-notice", 0, false, Opt::kWillCite},
    {"help", 'h', false, Opt::kHelp},
};

// Every option name GNU parallel 20221122 accepts (its options_completion_hash), so
// that one forklift lacks is refused as such rather than as a typo.
constexpr std::string_view kGnuLongOptions =
    "arg-file arg-file-sep arg-sep argfile argfilesep argsep bar basefile "
    "basenameextensionreplace basenamereplace bf bg bibtex bin block block-size "
    "block-timeout blocksize blocktimeout bner bnr bt bug cat cf citation cleanup "
    "col-sep color color-fail color-failed colorfail colorfailed colour colour-fail "
    "colour-failed colourfail colourfailed colsep compress compress-program "
    "compressprogram controlmaster csv ctag ctag-string ctagstring ctrl-c ctrlc debug "
    "decompress-program decompressprogram delay delimiter dirnamereplace dnr dr dry-run "
    "dryrun embed env eof er eta exit extensionreplace fg fifo files filter filter-host "
    "filter-hosts filterhosts gnu group group-by groupby halt halt-on-error haltonerror "
    "hashbang header help hgrp hostgroup hostgroups hostgrp id interactive jl joblog "
    "jobs keep-order keeporder latest-line latestline lb limit line-buffer line-buffered "
    "linebuffer linebuffered link linkinputsource ll load max-args max-chars "
    "max-line-length-allowed max-lines max-procs max-replace-args maxargs maxchars "
    "maxlinelengthallowed maxlines maxprocs maxreplaceargs memfree memsuspend "
    "min-version minversion nice nn no-ctrl-c no-ctrlc no-k no-keep-order no-notice "
    "no-run-if-empty noctrlc nok nokeeporder nonall nonotice norunifempty noswap null "
    "number-of-cores number-of-cpus number-of-sockets number-of-threads numberofcores "
    "numberofcpus numberofsockets numberofthreads onall open-tty output-as-files "
    "outputasfiles parens pipe pipe-part pipepart plain plus process-slot-var "
    "processslotvar profile progress quote recend record-env recordenv recstart regex "
    "regexp remove-rec-sep removerecsep replace res result results resume resume-failed "
    "resumefailed retries retry-failed retryfailed return round round-robin roundrobin "
    "rpl rrs rsync-opts rsyncopts semaphore semaphore-name semaphore-timeout "
    "semaphorename semaphoretimeout seqreplace session shard shebang shell-completion "
    "shell-quote shell_quote shellcompletion shellquote show-limits showlimits shuf "
    "silent skip-first-line skipfirstline slf slotreplace spreadstdin sql sql-and-worker "
    "sql-master sql-worker sqlandworker sqlmaster sqlworker ssh ssh-delay sshdelay "
    "sshlogin sshloginfile st tag tag-string tagstring tee tempdir template term-seq "
    "termseq tf timeout tmpdir tmpl tmux tmux-pane tmuxpane tollef total total-jobs "
    "totaljobs transfer transfer-file transfer-files transferfile transferfiles trc trim "
    "tty ungroup use-compress-program use-cores-instead-of-threads "
    "use-cpus-instead-of-cores use-decompress-program use-sockets-instead-of-threads "
    "usecompressprogram usecoresinsteadofthreads usecpusinsteadofcores "
    "usedecompressprogram usesocketsinsteadofthreads verbose version wait wd will-cite "
    "willcite work-dir workdir xapply xapplyinputsource xargs ";
constexpr std::string_view kGnuShortOptions = "0BCDEHIJLMNPSTUVWXYadeghijklmnopqrstuvx";

bool IsGnuLongOption(std::string_view name) {
  std::string_view all = kGnuLongOptions;
  while (!all.empty()) {
    size_t sp = all.find(' ');
    if (all.substr(0, sp) == name) return true;
    if (sp == std::string_view::npos) break;
    all.remove_prefix(sp + 1);
  }
  return false;
}

// Edit distance with adjacent transpositions (optimal string alignment), for "did you
// mean": "--jbos" is one edit from "--jobs". Option names are short.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The error for a long option forklift does not know: a GNU parallel option it lacks,
// a near miss of one it has, or neither.
tl::unexpected<Error> UnknownLong(std::string_view name) {
  std::string shown = "--" + std::string(name);
  if (IsGnuLongOption(name)) {
    return InvalidArgumentError("forklift map: '" + shown +
                                "' is not supported by forklift map (GNU parallel option)");
  }
  // One edit for short names, two for longer ones; aliases under four letters ("jl",
  // "nok") are too close to everything to be suggested.
  std::string best;
  size_t best_distance = name.size() <= 5 ? 2 : 3;
  for (const OptionDef& def : kOptions) {
    std::string_view names = def.long_names;
    while (!names.empty()) {
      size_t bar = names.find('|');
      std::string_view candidate = names.substr(0, bar);
      size_t d = EditDistance(name, candidate);
      if (d < best_distance && candidate.size() >= 4) {
        best_distance = d;
        best = candidate;
      }
      if (bar == std::string_view::npos) break;
      names.remove_prefix(bar + 1);
    }
  }
  if (!best.empty()) {
    return InvalidArgumentError("forklift map: unknown option '" + shown + "' (did you mean '--" +
                                best + "'?)");
  }
  return InvalidArgumentError("forklift map: unknown option '" + shown +
                              "' (see forklift map --help)");
}

tl::unexpected<Error> UnknownShort(char c) {
  std::string shown = std::string("-") + c;
  if (std::string_view(kGnuShortOptions).find(c) != std::string_view::npos) {
    return InvalidArgumentError("forklift map: '" + shown +
                                "' is not supported by forklift map (GNU parallel option)");
  }
  return InvalidArgumentError("forklift map: unknown option '" + shown +
                              "' (see forklift map --help)");
}

const OptionDef* FindLong(std::string_view name) {
  for (const OptionDef& def : kOptions) {
    std::string_view names = def.long_names;
    while (!names.empty()) {
      size_t bar = names.find('|');
      if (names.substr(0, bar) == name) return &def;
      if (bar == std::string_view::npos) break;
      names.remove_prefix(bar + 1);
    }
  }
  return nullptr;
}

const OptionDef* FindShort(char c) {
  for (const OptionDef& def : kOptions) {
    if (def.short_name == c) return &def;
  }
  return nullptr;
}

bool IsSeparator(std::string_view arg) {
  return arg == ":::" || arg == "::::" || arg == ":::+" || arg == "::::+";
}

tl::unexpected<Error> Bad(std::string_view option, std::string_view value, std::string_view why) {
  return InvalidArgumentError("forklift map: bad " + std::string(option) + " '" +
                              std::string(value) + "': " + std::string(why));
}

// Re-labels a value parser's error with the option it came from.
tl::unexpected<Error> Wrap(std::string_view option, const Error& error) {
  return InvalidArgumentError("forklift map: " + std::string(option) + ": " + error.message);
}

// Applies one option to *o. `shown` is the option as the user wrote it, for errors.
Status Apply(const OptionDef& def, std::string_view shown, const std::string& value,
             MapOptions* o) {
  switch (def.id) {
    case Opt::kJobs: {
      auto jobs = ParseJobs(value);
      if (!jobs) return tl::unexpected(jobs.error());
      o->jobs = *jobs;
      break;
    }
    case Opt::kKeepOrder: o->keep_order = true; break;
    case Opt::kNoKeepOrder: o->keep_order = false; break;
    case Opt::kLineBuffer: o->line_buffer = true; break;
    case Opt::kUngroup: o->ungroup = true; break;
    case Opt::kGroup: break;  // grouped output is the default
    case Opt::kTag: o->tag = true; break;
    case Opt::kTagString: o->tagstring = UnquotePrintf(value); break;
    case Opt::kJoblog:
      if (!value.empty() && value[0] == '+') {
        o->joblog = value.substr(1);
        o->joblog_append = true;
      } else {
        o->joblog = value;
        o->joblog_append = false;
      }
      if (o->joblog->empty()) return Bad(shown, value, "empty file name");
      break;
    case Opt::kResume: o->resume = true; break;
    case Opt::kResumeFailed: o->resume_failed = true; break;
    case Opt::kRetryFailed: o->retry_failed = true; break;
    case Opt::kRetries: {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return Bad(shown, value, "expected a whole number (0 = retry until it succeeds)");
      }
      o->retries = n;
      break;
    }
    case Opt::kRetryDelay: {
      // GNU parallel's durations: a bare number is seconds ("--retry-delay 0.5").
      auto d = core::ParseDuration(value, core::BareNumber::kSeconds);
      if (!d) return Wrap(shown, d.error());
      o->retry_delay = *d;
      break;
    }
    case Opt::kTimeout: {
      auto t = ParseTimeout(value);
      if (!t) return Wrap(shown, t.error());
      o->timeout = *t;
      break;
    }
    case Opt::kTermseq:
      if (value.empty()) return Bad(shown, value, "empty sequence");
      o->termseq = value;
      break;
    case Opt::kHalt: {
      auto h = ParseHaltPolicy(value);
      if (!h) return tl::unexpected(h.error());
      o->halt = *h;
      break;
    }
    case Opt::kBar: o->bar = true; break;
    case Opt::kEta: o->eta = true; break;
    case Opt::kProgress: o->progress = true; break;
    case Opt::kDryRun: o->dry_run = true; break;
    case Opt::kDelay: {
      auto d = core::ParseDuration(value, core::BareNumber::kSeconds);
      if (!d) return Wrap(shown, d.error());
      o->delay = *d;
      break;
    }
    case Opt::kResults: o->results = value; break;
    case Opt::kColsep: {
      auto splitter = ColumnSplitter::Create(value);  // a bad regex fails before any job
      if (!splitter) return tl::unexpected(splitter.error());
      o->colsep = value;
      break;
    }
    case Opt::kNull: o->null_separated = true; break;
    case Opt::kQuote: o->quote = true; break;
    case Opt::kShellQuote: ++o->shell_quote; break;
    case Opt::kArgFile:
      o->inputs.push_back(InputSpec{.kind = InputSpec::Kind::kFile, .path = value});
      break;
    case Opt::kJournal: o->journal = value; break;
    case Opt::kRunId:
      if (value.empty()) return Bad(shown, value, "empty id");
      o->run_id = value;
      break;
    case Opt::kQueue: {
      // Checked now, so a typo fails before anything runs; never echoes the password.
      auto dsn = sinks::ParsePgDsn(value);
      if (!dsn) {
        std::string why = dsn.error().message;
        if (why.rfind("--to: ", 0) == 0) why.erase(0, 6);  // the parser's own option name
        return InvalidArgumentError("forklift map: --queue: " + why);
      }
      o->queue = value;
      break;
    }
    case Opt::kQueueSchema:
      if (value.empty()) return Bad(shown, value, "empty schema name");
      o->queue_schema = value;
      break;
    case Opt::kQueueSlice: {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n == 0 || n > 100000) {
        return Bad(shown, value, "expected a number of items from 1 to 100000");
      }
      o->queue_slice = static_cast<size_t>(n);
      break;
    }
    case Opt::kWillCite: break;
    case Opt::kHelp: o->help = true; break;
  }
  return OkStatus();
}

// Perl's "\NNN" for the digits after a backslash: up to three octal digits make one
// character; a leading 8 or 9 stands for itself.
void AppendOctal(std::string_view digits, std::string* out) {
  size_t n = 0;
  unsigned value = 0;
  while (n < digits.size() && n < 3 && digits[n] >= '0' && digits[n] <= '7') {
    value = value * 8 + static_cast<unsigned>(digits[n] - '0');
    ++n;
  }
  if (n == 0) {
    out->append(digits);
    return;
  }
  if (value < 0x100) {
    out->push_back(static_cast<char>(value));
  } else {  // Perl makes a wide character, printed as UTF-8
    out->push_back(static_cast<char>(0xC0 | (value >> 6)));
    out->push_back(static_cast<char>(0x80 | (value & 0x3F)));
  }
  out->append(digits.substr(n));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<TimeoutSpec> ParseTimeout(std::string_view text) {
  if (!text.empty() && text.back() == '%') {
    std::string_view number = text.substr(0, text.size() - 1);
    double percent = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
        !std::isfinite(percent) || percent <= 0) {
      return InvalidArgumentError("bad timeout '" + std::string(text) +
                                  "': a percentage must be a number > 0 followed by %");
    }
    return TimeoutSpec{.percent = percent};
  }
  auto fixed = core::ParseDuration(text, core::BareNumber::kSeconds);
  if (!fixed) return InvalidArgumentError("bad timeout '" + std::string(text) + "'");
  return TimeoutSpec{.fixed = *fixed};
}

Result<JobsSpec> ParseJobs(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("forklift map: bad --jobs '" + std::string(text) +
                                "': expected N, N%, +N, -N or 0");
  };
  auto whole = [](std::string_view s, double* out) {
    if (s.empty()) return false;
    for (char c : s) {
      if (!IsDigit(c)) return false;
    }
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size();
  };
  JobsSpec spec;
  if (text.empty()) return bad();
  if (text[0] == '+' || text[0] == '-') {
    spec.kind = text[0] == '+' ? JobsSpec::Kind::kPlus : JobsSpec::Kind::kMinus;
    if (!whole(text.substr(1), &spec.value)) return bad();
    return spec;
  }
  if (text.back() == '%') {
    // GNU parallel: ^\d+(\.\d+)?%$
    std::string_view number = text.substr(0, text.size() - 1);
    size_t dot = number.find('.');
    double ignored;
    if (!whole(number.substr(0, dot), &ignored)) return bad();
    if (dot != std::string_view::npos && !whole(number.substr(dot + 1), &ignored)) return bad();
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), spec.value);
    if (ec != std::errc() || end != number.data() + number.size()) return bad();
    spec.kind = JobsSpec::Kind::kPercent;
    return spec;
  }
  if (!whole(text, &spec.value)) return bad();
  spec.kind = spec.value == 0 ? JobsSpec::Kind::kUnlimited : JobsSpec::Kind::kCount;
  return spec;
}

Result<int> ResolveJobs(const JobsSpec& spec, int cores) {
  double jobs = 0;
  switch (spec.kind) {
    case JobsSpec::Kind::kCount: jobs = spec.value; break;
    case JobsSpec::Kind::kPercent: jobs = cores * spec.value / 100; break;
    case JobsSpec::Kind::kPlus: jobs = cores + spec.value; break;
    case JobsSpec::Kind::kMinus: jobs = cores - spec.value; break;
    case JobsSpec::Kind::kUnlimited: return kUnlimitedJobs;
  }
  jobs = std::ceil(jobs);
  if (jobs < 1) {
    return InvalidArgumentError("forklift map: cannot run any jobs (--jobs gives " +
                                std::to_string(static_cast<long long>(jobs)) + " on " +
                                std::to_string(cores) + " cores)");
  }
  // An explicit count is the user's call; only keep it representable.
  constexpr double kMax = std::numeric_limits<int>::max();
  return jobs > kMax ? std::numeric_limits<int>::max() : static_cast<int>(jobs);
}

uint64_t MapOptions::MaxAttempts() const {
  if (!retries) return 1;
  if (*retries == 0) return std::numeric_limits<uint64_t>::max();
  return *retries;
}

std::string UnquotePrintf(std::string_view text) {
  // GNU parallel applies its substitutions one after another over the whole string;
  // doing the same keeps odd inputs ("\\t", "\1341") identical.
  auto replace_all = [](std::string s, std::string_view from, char to) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (s.compare(i, from.size(), from) == 0) {
        out.push_back(to);
        i += from.size();
      } else {
        out.push_back(s[i++]);
      }
    }
    return out;
  };
  std::string s = replace_all(std::string(text), "\\t", '\t');
  s = replace_all(std::move(s), "\\n", '\n');
  s = replace_all(std::move(s), "\\r", '\r');
  for (size_t width : {3u, 1u}) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (s[i] == '\\' && i + width < s.size()) {
        bool digits = true;
        for (size_t k = 1; k <= width; ++k) digits = digits && IsDigit(s[i + k]);
        if (digits) {
          AppendOctal(std::string_view(s).substr(i + 1, width), &out);
          i += width + 1;
          continue;
        }
      }
      out.push_back(s[i++]);
    }
    s = std::move(out);
  }
  return s;
}

Result<MapOptions> ParseMapArgs(const std::vector<std::string>& args) {
  MapOptions o;
  size_t i = 0;

  // Options, up to the first word that is not one.
  while (i < args.size()) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (IsSeparator(arg) || arg.size() < 2 || arg[0] != '-') break;
    ++i;
    if (arg[1] == '-') {
      size_t eq = arg.find('=');
      std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      std::string shown = "--" + name;
      const OptionDef* def = FindLong(name);
      if (!def) return UnknownLong(name);
      std::string value;
      if (def->takes_value) {
        if (eq != std::string::npos) {
          value = arg.substr(eq + 1);
        } else if (i < args.size()) {
          value = args[i++];
        } else {
          return InvalidArgumentError("forklift map: option '" + shown + "' needs a value");
        }
      } else if (eq != std::string::npos) {
        return InvalidArgumentError("forklift map: option '" + shown + "' takes no value");
      }
      FORKLIFT_RETURN_IF_ERROR(Apply(*def, shown, value, &o));
      if (o.help) return o;  // as GNU parallel: --help ends the parsing
      continue;
    }
    // A bundle of short options: "-kq", "-j2", "-kj 2".
    for (size_t k = 1; k < arg.size(); ++k) {
      std::string shown = std::string("-") + arg[k];
      const OptionDef* def = FindShort(arg[k]);
      if (!def) return UnknownShort(arg[k]);
      std::string value;
      if (def->takes_value) {
        if (k + 1 < arg.size()) {
          value = arg.substr(k + 1);
        } else if (i < args.size()) {
          value = args[i++];
        } else {
          return InvalidArgumentError("forklift map: option '" + shown + "' needs a value");
        }
        FORKLIFT_RETURN_IF_ERROR(Apply(*def, shown, value, &o));
        break;
      }
      FORKLIFT_RETURN_IF_ERROR(Apply(*def, shown, value, &o));
      if (o.help) return o;
    }
  }

  // The command, up to the first separator.
  while (i < args.size() && !IsSeparator(args[i])) o.command.push_back(args[i++]);

  // Input sources: ::: ARGS... and :::: FILES..., in order, after any -a files.
  while (i < args.size()) {
    const std::string sep = args[i++];
    if (sep == ":::+" || sep == "::::+") {
      return InvalidArgumentError("forklift map: '" + sep +
                                  "' (linked input sources) is not supported");
    }
    std::vector<std::string> group;
    while (i < args.size() && !IsSeparator(args[i])) group.push_back(args[i++]);
    if (sep == ":::") {
      o.inputs.push_back(InputSpec{.kind = InputSpec::Kind::kArgs, .args = std::move(group)});
    } else {
      for (std::string& path : group) {
        o.inputs.push_back(InputSpec{.kind = InputSpec::Kind::kFile, .path = std::move(path)});
      }
    }
  }

  if (o.tag && !o.tagstring) o.tagstring = "{}";
  if ((o.resume || o.resume_failed) && !o.joblog && !o.results) {
    return InvalidArgumentError(
        "forklift map: --resume and --resume-failed require --joblog or --results");
  }
  // The templates are parsed again by the runner; parsing them here makes a bad one an
  // error before anything runs.
  FORKLIFT_RETURN_IF_ERROR(CommandTemplate::ForCommand(o.command, o.quote));
  if (o.tagstring) FORKLIFT_RETURN_IF_ERROR(CommandTemplate::ForText(*o.tagstring));
  return o;
}

}  // namespace forklift::map
