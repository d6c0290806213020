// `forklift map --help`: the options forklift map implements, grouped as GNU parallel's
// man page groups them (input sources, the command and its replacement strings, job
// control, output, logging and resume, progress), with forklift's own additions marked.
#include "map/map_options.h"

namespace forklift::map {

std::string MapHelpText() {
  return R"(usage: forklift map [OPTIONS] COMMAND [ARGS...] [::: ARGS... | :::: FILES...]...

Runs COMMAND once per input, with GNU parallel's syntax and meaning for the options below.
GNU parallel options not listed are refused by name. Exit status: 0; the number of failed
jobs (1-100); 101 (more); 255 for bad input (nothing ran); 128 + N after signal N.

Input sources
  ::: ARGS...              arguments from the command line (several: the cross product)
  :::: FILE..., -a FILE    one argument per line of FILE ("-" is stdin); default: stdin
  --colsep REGEX, -C       split each input line into columns {1} {2} ... (a Perl regex)
  -0, --null               inputs end at NUL instead of newline

Command and replacement strings
  {} {.} {/} {//} {/.}     the input; without extension; basename; dirname; both
  {#} {%}                  the job's sequence number; its job slot (1..jobs)
  {N} {N.} {N/} ...        column N of the input (with --colsep or several sources)
  -q, --quote              quote the command's words (run it without a shell)
  --shell-quote            print each command line shell-quoted; run nothing

Job control
  -j, --jobs N|N%|+N|-N|0  jobs at once (default: one per core; 0: as many as the file
                           descriptors allow, at most 256)
  --delay DUR              at least DUR between job starts (jobs start in input order)
  --timeout DUR|N%         kill a job after DUR, or N% of the median runtime so far
  --termseq SEQ            how a job is killed: signals and ms (TERM,200,TERM,100,...,KILL,25)
  --halt when,why=N[%]     stop early: when = now|soon, why = fail|success|done
  --retries N              run a failing job up to N times in all (0: until it succeeds)
  --retry-delay DUR        [forklift] exponential backoff with full jitter between retries

Output
  -k, --keep-order         print outputs in input order
  --group                  a job's output once it ends (the default)
  --line-buffer, --lb      whole lines as they come
  -u, --ungroup            unbuffered, lines of jobs may mix
  --tag, --tagstring STR   prefix each output line with the input, or with STR
  --results DIR            each job's stdout, stderr and seq in DIR/1/ARG1/2/ARG2/...
  --dry-run                print the commands, run nothing

Logging and resume
  --joblog FILE            one row per finished job, GNU parallel's format (+FILE: append)
  --resume                 skip the jobs that finished (succeeded or failed); jobs that never
                           started or were killed run. Delete the joblog to start over.
  --resume-failed          rerun the failed jobs too
  --retry-failed           rerun the joblog's failed commands, ignoring the input
  --journal PATH           [forklift] the journal (default $FORKLIFT_JOURNAL or
                           .forklift/journal.db): every job's outcome, read by --resume
  --run-id ID              [forklift] name the run in the journal (forklift runs)

Scale-out (docs/queue.md)
  --queue DSN              [forklift] run the jobs on 'forklift worker' processes on any
                           hosts, through a PostgreSQL work queue; this map coordinates:
                           joblog, output, -k, --halt, --retries and the journal as
                           locally; -j is the number of jobs in flight in the queue
  --queue-schema NAME      [forklift] the queue's schema (default forklift)
  --queue-slice N          [forklift] most jobs per leased slice (default 100)

Progress
  --bar, --eta, --progress
                           a bar with percent, rate and ETA on stderr when it is a
                           terminal; plain lines otherwise

Other
  --will-cite              accepted and ignored
  -h, --help               this text

Signals: the first SIGINT, SIGTERM or SIGHUP starts no new job and waits for the running
ones (at once, with status 128 + N, when none is running); the second kills them.
See docs/map.md.
)";
}

}  // namespace forklift::map
