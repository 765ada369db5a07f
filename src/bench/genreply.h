/*
 * genreply.h — what a text-to-image server says back, read by pixbench:
 * the JSON replies of POST /api/v1/generate (images, timings per stage and
 * per denoising step, peak memory per stage), of OpenAI's
 * /v1/images/generations, of /api/v1/generate_async (the job id and its
 * URLs), of GET /api/v1/jobs/{id} (status, created/started/finished times),
 * their error objects (pixserve's and OpenAI's), and the job's event stream
 * (Server-Sent Events). Servers other than pixserve may send any subset:
 * every figure not in the reply stays unknown (-1), never guessed.
 */
#ifndef PB_GENREPLY_H
#define PB_GENREPLY_H

#include <stddef.h>

#define PB_GEN_MAX_REPLY ((size_t)64 << 20) /* JSON read at most (base64 images inside) */

typedef struct pb_gen_reply {
    int nimages;             /* entries of images[] or data[] (-1: neither) */
    int width, height;       /* -1 unknown */
    int prompt_tokens;       /* -1 unknown */
    /* timings in ms (-1 unknown) */
    double queue_ms, text_encode_ms, denoise_ms, vae_decode_ms, encode_ms, total_ms;
    int nsteps;              /* entries of step_ms[] (0: none) */
    double step_mean_ms, step_first_ms, step_max_ms; /* over step_ms[] (-1 unknown) */
    /* memory: each stage's peak in bytes (-1 unknown: absent, or 0 as
     * pixserve's engines that do not measure send) and what it measures
     * (pixserve's memory.source: host_rss, gpu; "" unknown) */
    double text_encode_peak, denoise_peak, vae_decode_peak;
    char mem_source[16];
    /* an error object: code ("" none; OpenAI's type when it has no code) and message */
    char err_code[48];
    char err_msg[200];
    /* a job (async submit or status) */
    char id[80];
    char status[16];         /* queued, running, done, failed, cancelled, expired ("" unknown) */
    char events_url[160], status_url[160];
    double created_ms, started_ms, finished_ms; /* server clock, ms since the epoch (-1 unknown) */
    int step, steps;         /* progress (-1 unknown) */
} pb_gen_reply;

/* Parses one JSON reply of any of the shapes above into out (every field
 * set: unknown ones -1 or ""). Returns 0, or PX_ECORRUPT / PX_ETOOBIG with a
 * message when the text is not a JSON object (out is still initialised). */
int pb_gen_reply_parse(const char *s, size_t n, pb_gen_reply *out, char *err, size_t errlen);

/* True when an error reply says the server ran out of memory (pixserve's
 * code out_of_memory, or a message naming CUDA/GPU out of memory). */
int pb_gen_reply_is_oom(const pb_gen_reply *r);

/* --- Server-Sent Events ---------------------------------------------------- */

#define PB_SSE_MAX_LINE 65536 /* a longer line is an error */
#define PB_SSE_MAX_DATA ((size_t)1 << 20)

/* An incremental text/event-stream parser: feed bytes as they arrive, split
 * anywhere; each complete event (ended by a blank line) is handed to the
 * callback with its name ("message" when it had none) and its data lines
 * joined by '\n'. Comments and unknown fields are skipped. */
typedef int (*pb_sse_fn)(void *ctx, const char *event, const char *data, size_t len);

typedef struct pb_sse {
    char event[64];
    char *line;   /* PB_SSE_MAX_LINE + 1 bytes */
    size_t line_len;
    char *data;   /* PB_SSE_MAX_DATA + 1 bytes */
    size_t data_len;
    int have_data;
    int skip_lf;  /* the last byte was CR: a following LF ends nothing more */
} pb_sse;

void pb_sse_init(pb_sse *p);
void pb_sse_free(pb_sse *p);

/* Feeds n bytes. Returns 0, the callback's non-zero return (it stops the
 * parse), or PX_ETOOBIG with a message when a line or an event's data is
 * over its cap. */
int pb_sse_feed(pb_sse *p, const char *d, size_t n, pb_sse_fn fn, void *ctx, char *err, size_t errlen);

#endif
