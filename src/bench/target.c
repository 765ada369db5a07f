/*
 * target.c — the user's target or an embedded pixserve (see target.h).
 */
#include "bench/target.h"

#include "bench/cli.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pb_target_resolve(const char *url, int allow_remote, struct sockaddr_storage *ss, socklen_t *sl,
                      char *hostport, size_t hpcap, char *prefix, size_t pcap, int *loopback)
{
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "pixbench: --target must start with http:// (https is not supported)\n");
        return 2;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    snprintf(prefix, pcap, "%s", slash ? slash : "");
    size_t plen = strlen(prefix);
    if (plen && prefix[plen - 1] == '/') prefix[plen - 1] = 0;
    char host[256], port[16] = "80";
    if (hl >= sizeof host) return pb_cli_bad("pixbench", "--target host too long");
    memcpy(host, h, hl);
    host[hl] = 0;
    snprintf(hostport, hpcap, "%s", host);
    char *colon = strrchr(host, ':');
    if (host[0] == '[') {
        char *rb = strchr(host, ']');
        if (!rb) return pb_cli_bad("pixbench", "bad IPv6 --target");
        if (rb[1] == ':') snprintf(port, sizeof port, "%s", rb + 2);
        *rb = 0;
        memmove(host, host + 1, strlen(host));
    } else if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g || !res) {
        fprintf(stderr, "pixbench: cannot resolve %s: %s\n", host, gai_strerror(g));
        return 1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    int loop = 0;
    if (ss->ss_family == AF_INET) {
        loop = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)ss)->sin6_addr;
        loop = IN6_IS_ADDR_LOOPBACK(a6) ||
               (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
    *loopback = loop;
    if (!loop && !allow_remote) {
        fprintf(stderr, "pixbench: %s is not this machine; load-testing other hosts needs "
                        "--allow-remote (make sure you may)\n", host);
        return 2;
    }
    return 0;
}

int pb_target_embed(pb_embedded *e, const char *bin_arg, const char *log_level, const char *const *args, int nargs,
                    const char *prog, int quiet, char *url, size_t urlcap)
{
    char bin[4096], err[512];
    memset(e, 0, sizeof *e);
    if (bin_arg) snprintf(bin, sizeof bin, "%s", bin_arg);
    else if (pb_child_find_pixserve(bin, sizeof bin)) {
        fprintf(stderr, "%s: no --target and no pixserve next to pixbench (%s); build it or give --pixserve PATH\n",
                prog, bin);
        return 1;
    }
    snprintf(e->outputs_dir, sizeof e->outputs_dir, "/tmp/pixbench-outputs-XXXXXX");
    if (!mkdtemp(e->outputs_dir)) return pb_cli_bad("pixbench", "cannot make a temporary directory");
    e->have_outputs = 1;
    const char *argv[64];
    int na = 0;
    argv[na++] = "--outputs";
    argv[na++] = e->outputs_dir;
    argv[na++] = "--log-level";
    argv[na++] = log_level;
    for (int i = 0; i < nargs && na < 64; i++) argv[na++] = args[i];
    char logp[1200];
    snprintf(logp, sizeof logp, "%s/pixserve.log", e->outputs_dir);
    if (pb_child_start(bin, argv, na, logp, 60000, &e->child, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    /* it listens before its engines are loaded and warmed: wait for /readyz */
    if (pb_child_wait_ready(e->child.port, "/readyz", 300000, err, sizeof err)) {
        fprintf(stderr, "%s: pixserve not ready: %s\n", prog, err);
        return 1;
    }
    snprintf(url, urlcap, "http://127.0.0.1:%d", e->child.port);
    if (!quiet) fprintf(stderr, "%s: started %s (pid %d)\n", prog, e->child.banner, (int)e->child.pid);
    return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

int pb_target_unembed(pb_embedded *e, const char *prog, int quiet)
{
    int st = 0;
    if (e->child.pid) {
        st = pb_child_stop(&e->child, 30000);
        if (st != 0 && !quiet) fprintf(stderr, "%s: pixserve exited with status %d\n", prog, st);
        e->child.pid = 0;
    }
    if (e->have_outputs) nftw(e->outputs_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    e->have_outputs = 0;
    return st;
}
