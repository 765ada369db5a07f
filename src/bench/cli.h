/*
 * cli.h — what every pixbench subcommand's flag parser shares: the
 * "needs a value" step and the bad-usage message with exit status 2, so
 * each subcommand words and exits on bad flags the same way.
 */
#ifndef PB_CLI_H
#define PB_CLI_H

#include <signal.h>

/* In a loop over argv with `a` the flag, `v` the next argument (NULL at the
 * end) and `i` the index: returns 2 with "PROG: FLAG needs a value" when v
 * is missing, else steps i past it. */
#define PB_NEED_VALUE(prog)                                                   \
    do {                                                                      \
        if (!v) {                                                             \
            fprintf(stderr, "%s: %s needs a value\n", (prog), a);             \
            return 2;                                                         \
        }                                                                     \
        i++;                                                                  \
    } while (0)

/* Blocks SIGINT and SIGTERM in this thread, and so in the threads it
 * starts after, and puts them in set: the subcommand takes them with
 * sigwait (or sigtimedwait), so no worker thread is interrupted. */
void pb_cli_block_signals(sigset_t *set);

/* Prints "prog: what" to stderr; returns 2 (the bad-usage exit status). */
int pb_cli_bad(const char *prog, const char *what);

#endif
