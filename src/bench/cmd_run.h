/*
 * cmd_run.h — `pixbench run`, the default subcommand: load-tests a target
 * (the user's or an embedded pixserve), samples its resources beside the
 * load, prints the table and writes the report. Its flags are run_args.h.
 */
#ifndef PB_CMD_RUN_H
#define PB_CMD_RUN_H

/* Runs it with argv after the subcommand; cmdline is the whole command as
 * typed, for the report. Returns the exit status: 0 done, 1 could not
 * run, 2 bad usage, 3 SLO broken or (--soak) a leak suspected. Ctrl-C
 * ends the load early and reports what was measured. */
int pb_cmd_run(int argc, char **argv, const char *cmdline);

#endif
