/*
 * monitor_cmd.h — the `pixbench monitor` subcommand, and the working
 * directory of a process (where a service's relative outputs live: the
 * default disk to watch).
 */
#ifndef PB_MONITOR_CMD_H
#define PB_MONITOR_CMD_H

#include <stddef.h>

/* Runs `pixbench monitor` with its arguments (after "monitor"). Returns the
 * exit status: 0, 1 could not run, 2 bad usage. */
int pb_cmd_monitor(int argc, char **argv);

/* The working directory of pid (0: ours) into buf, resolved when possible
 * (else the /proc link's path). Returns buf. */
const char *pb_target_cwd(int pid, char *buf, size_t cap);

#endif
