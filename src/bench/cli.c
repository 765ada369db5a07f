/*
 * cli.c — the subcommands' shared bad-usage message (see cli.h).
 */
#include "bench/cli.h"

#include <stdio.h>

int pb_cli_bad(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    return 2;
}
