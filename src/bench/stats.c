/*
 * stats.c — accumulators of request outcomes (see stats.h).
 */
#include "bench/stats.h"

#include <stdlib.h>
#include <string.h>

void pb_acc_init(pb_acc *a)
{
    memset(a, 0, sizeof *a);
    px_hist_init(&a->lat);
}

void pb_acc_free(pb_acc *a)
{
    for (int i = 0; i < a->nst; i++) px_hist_free(a->st[i]);
    a->nst = 0;
}

void pb_acc_reset(pb_acc *a)
{
    px_hist_reset(&a->lat);
    a->ok = a->late = a->bytes_in = a->bytes_out = a->st_missing = 0;
    memset(a->err, 0, sizeof a->err);
    a->fail_status = a->fail_status_mixed = 0;
    for (int i = 0; i < a->nst; i++) px_hist_reset(a->st[i]);
}

void pb_acc_note_status(pb_acc *a, int status)
{
    if (a->fail_status_mixed) return;
    if (!a->fail_status) a->fail_status = status;
    else if (a->fail_status != status) {
        a->fail_status = 0;
        a->fail_status_mixed = 1;
    }
}

static px_hist *st_slot(pb_acc *a, const char *name, size_t n)
{
    if (n >= sizeof a->st_name[0]) n = sizeof a->st_name[0] - 1;
    for (int i = 0; i < a->nst; i++)
        if (strlen(a->st_name[i]) == n && !memcmp(a->st_name[i], name, n)) return a->st[i];
    if (a->nst == PB_ST_MAX) return NULL;
    px_hist *h = px_hist_new();
    if (!h) return NULL;
    memcpy(a->st_name[a->nst], name, n);
    a->st_name[a->nst][n] = 0;
    a->st[a->nst++] = h;
    return h;
}

void pb_acc_merge(pb_acc *dst, const pb_acc *src)
{
    px_hist_merge(&dst->lat, &src->lat);
    dst->ok += src->ok;
    for (int i = 0; i < PB_ERR_N; i++) dst->err[i] += src->err[i];
    dst->late += src->late;
    dst->bytes_in += src->bytes_in;
    dst->bytes_out += src->bytes_out;
    dst->st_missing += src->st_missing;
    if (src->fail_status_mixed) {
        dst->fail_status = 0;
        dst->fail_status_mixed = 1;
    } else if (src->fail_status) {
        pb_acc_note_status(dst, src->fail_status);
    }
    for (int i = 0; i < src->nst; i++) {
        if (src->st[i]->count == 0) continue;
        px_hist *h = st_slot(dst, src->st_name[i], strlen(src->st_name[i]));
        if (h) px_hist_merge(h, src->st[i]);
    }
}

uint64_t pb_acc_errors(const pb_acc *a)
{
    uint64_t n = 0;
    for (int i = 0; i < PB_ERR_N; i++) n += a->err[i];
    return n;
}

uint64_t pb_acc_requests(const pb_acc *a)
{
    return a->ok + pb_acc_errors(a);
}

int pb_acc_server_timing(pb_acc *a, const char *v)
{
    int n = 0;
    const char *p = v;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* one metric: name *( ";" param ) */
        const char *s = p;
        while (len && (*s == ' ' || *s == '\t')) s++, len--;
        size_t nl = 0;
        while (nl < len && s[nl] != ';' && s[nl] != ' ') nl++;
        const char *d = s;
        double dur = -1;
        while ((d = memchr(d, ';', len - (size_t)(d - s)))) {
            d++;
            while (*d == ' ') d++;
            if (!strncmp(d, "dur=", 4)) {
                char *e;
                dur = strtod(d + 4, &e);
                if (e == d + 4) dur = -1;
                break;
            }
        }
        if (nl && dur >= 0 && dur < 1e10) {
            px_hist *h = st_slot(a, s, nl);
            if (h) {
                px_hist_record(h, (uint64_t)(dur * 1e6));
                n++;
            }
        }
        p = end ? end + 1 : NULL;
    }
    return n;
}

const char *pb_err_class_name(int c)
{
    static const char *names[PB_ERR_N] = {"connect", "read",  "write",  "timeout",
                                          "status",  "check", "dropped"};
    return c >= 0 && c < PB_ERR_N ? names[c] : "unknown";
}
