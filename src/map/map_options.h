// The command line of `forklift map`, read the way GNU parallel 20221122 reads its own:
//
//   forklift map [options] [command words...] [::: args... | :::: files...]...
//
// The parser is hand-written rather than CLI11 because GNU parallel's grammar does not fit
// a declarative option parser: options end at the first non-option word (everything after
// it, "-x" included, belongs to the command), the command ends at the first ::: or ::::,
// each ::: / :::: starts an input source whose words are data, not options, and values
// such as "-j -1", "-j 50%" or "--halt -2" look like options themselves.
//
// As in GNU parallel (Getopt::Long with bundling and require_order): long options take
// "--opt value" or "--opt=value"; short ones bundle and glue ("-kj2", "-j2", "-j 2");
// "--" ends the options. Unlike GNU parallel, long options must be spelled out (no
// unique-prefix abbreviations) and GNU parallel options that forklift does not implement
// are errors, not silently different behaviour.
#ifndef FORKLIFT_MAP_MAP_OPTIONS_H_
#define FORKLIFT_MAP_MAP_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "map/halt_policy.h"
#include "map/input_source.h"

namespace forklift::map {

// --timeout: either a fixed duration or a percentage of the median runtime of the jobs
// that succeeded so far (GNU parallel's "--timeout 200%").
struct TimeoutSpec {
  Duration fixed{0};   // used when percent == 0
  double percent = 0;  // > 0: timeout = median successful runtime * percent / 100

  bool is_percent() const { return percent > 0; }
  friend bool operator==(const TimeoutSpec&, const TimeoutSpec&) = default;
};

// "30", "1h", "150%", "12.5%": a duration as core::ParseDuration reads it (a bare number
// is seconds, as in GNU parallel), or a number > 0 followed by '%'. On failure returns
// InvalidArgument naming the text. Thread-safe.
Result<TimeoutSpec> ParseTimeout(std::string_view text);

// -j/--jobs: how many jobs run at once, as GNU parallel reads it.
struct JobsSpec {
  enum class Kind {
    kCount,      // "4"
    kPercent,    // "50%", "12.5%": of the CPU cores, rounded up
    kPlus,       // "+2": cores + 2
    kMinus,      // "-1": cores - 1
    kUnlimited,  // "0": as many as possible, capped at kUnlimitedJobs
  };
  Kind kind = Kind::kPercent;
  double value = 100;  // default: 100% = one job per core, GNU parallel's default

  friend bool operator==(const JobsSpec&, const JobsSpec&) = default;
};

// What "-j 0" means. GNU parallel runs "as many as possible" (2^31, limited by file
// descriptors and processes); a fixed cap keeps forklift's memory and descriptors bounded.
inline constexpr int kUnlimitedJobs = 256;

// Parses a -j value. On failure returns InvalidArgument naming it. Thread-safe.
Result<JobsSpec> ParseJobs(std::string_view text);
// The number of jobs on a machine with `cores` cores: GNU parallel's arithmetic, rounded
// up. Fewer than one returns InvalidArgument ("cannot run any jobs", as GNU parallel).
Result<int> ResolveJobs(const JobsSpec& spec, int cores);

// Everything `forklift map` was asked to do. Fields left alone keep GNU parallel's defaults.
struct MapOptions {
  JobsSpec jobs;             // -j/--jobs/-P/--max-procs; default one job per core
  bool keep_order = false;   // -k/--keep-order: print outputs in input order
  bool line_buffer = false;  // --line-buffer/--lb: pass whole lines as they come
  bool ungroup = false;      // -u/--ungroup: pass output through unbuffered
  bool tag = false;          // --tag: prefix output lines with the arguments
  // --tagstring STR (or "{}" for --tag alone): the line prefix template, before a tab.
  // GNU parallel's printf escapes (\t \n \r \NNN) are already decoded.
  std::optional<std::string> tagstring;
  std::optional<std::string> joblog;  // --joblog FILE ("-" = stdout); unset: no joblog
  bool joblog_append = false;         // --joblog +FILE: append, no header (the '+' is stripped)
  bool resume = false;                // --resume: skip seqs present in the joblog
  bool resume_failed = false;         // --resume-failed: also rerun the joblog's failed seqs
  bool retry_failed = false;          // --retry-failed: rerun the joblog's failed commands only
  // --retries N: run a failing job at most N times in all; 0 = until it succeeds. Unset:
  // once (MaxAttempts() says it as a number).
  std::optional<uint64_t> retries;
  Duration retry_delay{0};             // --retry-delay DUR: base of exponential backoff with
                                       // full jitter between attempts (forklift; GNU has none)
  std::optional<TimeoutSpec> timeout;  // --timeout DUR|N%; unset: none
  // --termseq/--term-seq SEQ: how a job is killed; parsed by the subprocess layer.
  std::string termseq = "TERM,200,TERM,100,TERM,50,KILL,25";
  HaltPolicy halt;                     // --halt/--halt-on-error SPEC; default never
  bool bar = false;                    // --bar
  bool eta = false;                    // --eta
  bool progress = false;               // --progress
  bool dry_run = false;                // --dry-run/--dryrun/--dr: print commands, run nothing
  Duration delay{0};                   // --delay DUR: least time between job starts
  std::optional<std::string> results;  // --results/--res DIR
  std::optional<std::string> colsep;   // --colsep/--col-sep/-C REGEX
  bool null_separated = false;         // -0/--null: records end at NUL
  bool quote = false;   // -q/--quote: quote the command words (see command_template.h)
  int shell_quote = 0;  // --shell-quote, counted: instead of running a job,
                        // print ShellQuote applied this many times to its line
  std::optional<std::string> journal;  // --journal PATH; unset: FORKLIFT_JOURNAL or default
  std::optional<std::string> run_id;   // --run-id ID; unset: a new run
  // --queue DSN: coordinate the run through the PostgreSQL work queue (docs/queue.md);
  // unset: run jobs locally. Validated as a DSN by the parser.
  std::optional<std::string> queue;
  std::string queue_schema = "forklift";  // --queue-schema NAME
  size_t queue_slice = 100;               // --queue-slice N: most jobs per slice, 1..100000
  bool help = false;                      // -h/--help: print MapHelpText() and run nothing
  std::vector<std::string> command;       // the command words; empty: the input is the command
  // The input sources in GNU parallel's order: every -a FILE first, then each ::: list
  // and each :::: file as written. Empty: stdin.
  std::vector<InputSpec> inputs;

  // How many times a job may run: 1 without --retries, UINT64_MAX for --retries 0.
  uint64_t MaxAttempts() const;
  InputOptions input_options() const {
    return {.null_separated = null_separated, .colsep = colsep};
  }
};

// Parses the arguments after `map`. Checks everything that can be checked without
// running anything: option names and values, the --colsep regex, the command and
// --tagstring templates, and --resume needing --joblog or --results. On failure returns
// InvalidArgument with a one-line message naming the culprit: "forklift map: '--pipe' is
// not supported by forklift map (GNU parallel option)" for a GNU parallel option forklift
// lacks, "forklift map: unknown option '--jbos' (did you mean '--jobs'?)" for a near miss.
// -h/--help ends the parsing with help set. Input files are opened later (InputSource).
// Thread-safe.
Result<MapOptions> ParseMapArgs(const std::vector<std::string>& args);

// The text `forklift map --help` prints: usage and every option, grouped as GNU parallel's
// man page groups them. Thread-safe.
std::string MapHelpText();

// GNU parallel's unquote_printf, applied to --tagstring: \t \n \r and octal \N / \NNN.
std::string UnquotePrintf(std::string_view text);

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_MAP_OPTIONS_H_
