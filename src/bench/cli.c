/*
 * cli.c — what the subcommands share on the command line (see cli.h).
 */
#include "bench/cli.h"

#include <pthread.h>
#include <stdio.h>

int pb_cli_bad(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    return 2;
}

void pb_cli_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}
