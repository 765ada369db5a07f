/*
 * cmd_faults.h — `pixbench faults`: sends the fault catalogue (faults.h)
 * to a target, or to an embedded pixserve started with the limits given,
 * prints the verdicts and writes the fault report.
 */
#ifndef PB_CMD_FAULTS_H
#define PB_CMD_FAULTS_H

/* Runs it with argv after the subcommand; cmdline is the whole command as
 * typed, for the report. Returns the exit status: 0 no case failed, 1
 * could not run, 2 bad usage, 3 a case failed (or, --strict, warned). */
int pb_cmd_faults(int argc, char **argv, const char *cmdline);

#endif
