// The floor for `forklift map`'s benchmark: N × posix_spawn of a program, P at a time,
// waiting for each with waitpid, no logging, no output capture. Each job gets its number
// as its one argument, as `forklift map`, `xargs -n1` and GNU parallel give it the input
// line: the argv must match, since coreutils' `true` with exactly one argument checks for
// --help and so loads the locale (~0.15 ms a process here), and without one does not.
// Nothing can be faster that starts the same processes.
// usage: spawn_floor JOBS PARALLEL PROGRAM
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

extern char** environ;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: spawn_floor JOBS PARALLEL PROGRAM\n");
    return 2;
  }
  long jobs = std::atol(argv[1]), parallel = std::atol(argv[2]);
  long started = 0, running = 0, failed = 0;
  while (started < jobs || running > 0) {
    while (started < jobs && running < parallel) {
      std::string number = std::to_string(started + 1);
      char* args[] = {argv[3], number.data(), nullptr};
      pid_t pid;
      if (posix_spawn(&pid, argv[3], nullptr, nullptr, args, environ) != 0) return 1;
      ++started;
      ++running;
    }
    int status;
    if (wait(&status) > 0) {
      --running;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}
