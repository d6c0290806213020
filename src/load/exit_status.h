// The exit statuses of `forklift load`: one table, documented in
// docs/load.md and printed by `forklift load --help` (kExitStatusHelp), so that a script can
// tell "fix the command" from "the server is down" from "some rows were dead-lettered".
//
// Thread safety: pure functions over values.
#ifndef FORKLIFT_LOAD_EXIT_STATUS_H_
#define FORKLIFT_LOAD_EXIT_STATUS_H_

#include "forklift/result.h"
#include "load/load_runner.h"

namespace forklift::load {

enum LoadExitStatus : int {
  kExitLoaded = 0,       // every row read was loaded (or had been, by an earlier run)
  kExitFailed = 1,       // the load failed or stopped once begun; or it loaded no row
  kExitUsage = 2,        // bad options or values, unreadable input files: nothing loaded
  kExitRejected = 3,     // the load finished, but some rows were dead-lettered
  kExitUnreachable = 4,  // the target could not be reached (down, refused, timed out)
  kExitRefused = 5,      // the target refused: authentication, a missing privilege
  kExitMissing = 6,      // the target lacks the database, schema, table, column or index
  kExitBusy = 7,         // another load with the same load id is running
};

// For an error RunLoad returned (nothing was loaded). It reads the error's code and, for
// what only the server's words tell apart (a failed login, an unknown database), the
// wording of sinks' messages (libpq and the server speak English there: lc_messages=C).
int ExitStatusOf(const Error& error);

// For a load that ran: kExitLoaded, kExitRejected or kExitFailed (failed or cancelled;
// the CLI turns a signal into 128+N itself).
int ExitStatusOf(const LoadSummary& summary);

// The table as `--help` prints it, one "  N  meaning" line each.
extern const char kExitStatusHelp[];

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_EXIT_STATUS_H_
