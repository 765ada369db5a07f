/*
 * fuzz_genreply.c — libFuzzer target for pixbench's readers of a
 * text-to-image server's replies (src/bench/genreply.c): the JSON reply
 * parser (generate, OpenAI, job, error shapes) and the event-stream parser,
 * the latter fed in pieces cut where the first byte says. Unknown figures
 * must stay negative, known ones non-negative; strings stay terminated.
 */
#include "bench/genreply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(void *ctx, const char *ev, const char *d, size_t n)
{
    size_t *count = ctx;
    if (strlen(ev) >= 64 || n > PB_SSE_MAX_DATA || d[n] != 0) abort();
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *t = malloc(n ? n : 1);
    memcpy(t, data + 1, n);
    char err[256];
    if (data[0] & 1) {
        pb_gen_reply r;
        pb_gen_reply_parse(t, n, &r, err, sizeof err);
        if (strlen(r.err_code) >= sizeof r.err_code || strlen(r.id) >= sizeof r.id ||
            strlen(r.status) >= sizeof r.status || strlen(r.events_url) >= sizeof r.events_url)
            abort();
        if (r.nsteps < 0 || (r.nsteps > 0 && r.step_mean_ms < 0) || (r.nsteps == 0 && r.step_mean_ms >= 0)) abort();
        if (r.nsteps > 0 && r.step_mean_ms > r.step_max_ms * (1 + 1e-9) + 1e-9) abort();
        (void)pb_gen_reply_is_oom(&r);
    } else {
        pb_sse p;
        pb_sse_init(&p);
        size_t cut = n ? (size_t)(data[0] >> 1) % (n + 1) : 0, count = 0;
        if (pb_sse_feed(&p, t, cut, on_event, &count, err, sizeof err) == 0)
            pb_sse_feed(&p, t + cut, n - cut, on_event, &count, err, sizeof err);
        pb_sse_free(&p);
    }
    free(t);
    return 0;
}
