/*
 * target.h — what `pixbench run` and `pixbench faults` aim at: the user's
 * http:// URL, resolved and held to this machine unless remote targets are
 * allowed, or an embedded pixserve (child.h) with a temporary outputs
 * directory that goes away with it. Both subcommands share this so the
 * embedded server starts, and the loopback rule holds, the same way.
 */
#ifndef PB_TARGET_H
#define PB_TARGET_H

#include "bench/child.h"

#include <stddef.h>
#include <sys/socket.h>

/* http://host:port[/prefix] into an address, "host[:port]" for the Host
 * header (hostport) and the path prefix without a trailing slash. A target
 * that is not this machine is refused unless allow_remote. *loopback: it is
 * this machine. Returns 0, 1 (cannot resolve) or 2 (bad usage), the
 * message printed to stderr: these are exit statuses. */
int pb_target_resolve(const char *url, int allow_remote, struct sockaddr_storage *ss, socklen_t *sl,
                      char *hostport, size_t hpcap, char *prefix, size_t pcap, int *loopback);

/* An embedded pixserve and its outputs directory. */
typedef struct pb_embedded {
    pb_child child;      /* child.pid 0: none running */
    char outputs_dir[32];
    int have_outputs;    /* outputs_dir exists (removed by pb_target_unembed) */
} pb_embedded;

/* Starts `pixserve serve` (bin, else the one next to pixbench) with
 * --outputs <a fresh temporary directory> --log-level log_level and args,
 * and waits until it is ready (/readyz). url: "http://127.0.0.1:PORT".
 * prog names the subcommand in messages ("pixbench", "pixbench faults");
 * quiet: no "started" line. Returns 0 or an exit status (1, 2) with the
 * message printed; call pb_target_unembed either way. */
int pb_target_embed(pb_embedded *e, const char *bin, const char *log_level, const char *const *args, int nargs,
                    const char *prog, int quiet, char *url, size_t urlcap);

/* Stops the embedded pixserve (if any) and removes its outputs directory.
 * Returns its exit status (0 for a clean stop or none running), which is
 * reported on stderr unless quiet. */
int pb_target_unembed(pb_embedded *e, const char *prog, int quiet);

#endif
