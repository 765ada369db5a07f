/*
 * genrun.h — the text-to-image run plan: the prompt set, the parameter
 * matrix's cells and a workload per cell, and the reply reader that every
 * connection's check goes through, which keeps per cell (and per prompt
 * category) what the server said of each request: stage timings, per-step
 * time, per-stage peak memory, prompt tokens, and the error objects of
 * failed replies (out-of-memory told apart).
 */
#ifndef PB_GENRUN_H
#define PB_GENRUN_H

#include "bench/genreply.h"
#include "bench/loop.h"
#include "bench/matrix.h"
#include "bench/profile.h"
#include "bench/prompts.h"

#include <pthread.h>
#include <stdint.h>

typedef struct pb_gen_opts {
    const char *prompts_file; /* --prompts */
    char matrix[1024];        /* --matrix spec ("" none) */
    int one_at_a_time;        /* --matrix-one-at-a-time */
    int async;                /* --async: 1 follow events, 2 poll */
    int64_t poll_ns;          /* --poll DUR */
} pb_gen_opts;

typedef struct pb_gen_mean {
    double sum, max;
    uint64_t n;
} pb_gen_mean;

/* -1 when nothing was added. */
double pb_gen_mean_of(const pb_gen_mean *m);

typedef struct pb_gen_cellstats {
    uint64_t replies;         /* successful replies read */
    uint64_t parsed;          /* ... that were a JSON object */
    pb_gen_mean queue, text_encode, denoise, step, step_first, vae_decode, encode, total, tokens;
    pb_gen_mean te_peak, dn_peak, vae_peak; /* bytes */
    char mem_source[16]; /* the replies' memory.source ("" none said) */
    /* per prompt category; cat_total is the server's total less its queue wait */
    pb_gen_mean cat_total[PB_PROMPTS_MAX_CATS], cat_denoise[PB_PROMPTS_MAX_CATS],
        cat_tokens[PB_PROMPTS_MAX_CATS];
    uint64_t failed, oom;     /* replies with a status outside the expected range; of them out of memory */
    int fail_status;          /* the last one's status */
    char fail_code[48], fail_msg[200];
} pb_gen_cellstats;

typedef struct pb_genstats {
    pthread_mutex_t mu;
    pb_check_fn inner;        /* the profile's own check */
    void *inner_ctx;
    int ncells;
    int64_t win_start, win_end; /* the stage's measured window: replies outside it are not counted */
    /* each cell's requests: request i is prompt i mod nprompts (--lora-mix
     * repeats the prompts once per LoRA, profile.h) */
    const pb_request *reqs[PB_MATRIX_MAX];
    int nreqs[PB_MATRIX_MAX];
    const int *req_cat;       /* prompt i's category */
    int nprompts;
    pb_gen_cellstats cell[PB_MATRIX_MAX];
} pb_genstats;

typedef struct pb_gen_plan {
    pb_prompts prompts;
    const char **texts;       /* prompts.p[i].text */
    int *cats;
    pb_gen_cell cells[PB_MATRIX_MAX];
    int ncells, baseline;
    int matrix;               /* --matrix given: a stage per cell */
    pb_genstats *stats;
} pb_gen_plan;

/* Loads the prompts (the file, else --prompt, else the seed's), builds the
 * matrix's cells (or one cell of the profile's values) and a workload per
 * cell into wls (at most PB_MATRIX_MAX), and the reply reader over them.
 * prof->prompts points into plan afterwards. Returns 0, or PX_EINVAL (bad
 * usage) or another PX_E* with a message. Free with pb_gen_plan_free after
 * the workloads. */
int pb_gen_plan_build(const pb_gen_opts *g, pb_profile_opts *prof, pb_gen_plan *plan, pb_workload *wls,
                      int *nwl, char *err, size_t errlen);
void pb_gen_plan_free(pb_gen_plan *plan);

/* The loop's check and bad-status hook; ctx is plan->stats. */
int pb_gen_check(void *ctx, const pb_request *req, const pb_http_parser *resp, const px_buf *body, char *err,
                 size_t errlen);
void pb_gen_bad_status(void *ctx, const pb_request *req, const pb_http_parser *resp, const px_buf *body);
/* pb_run_config's on_window; ctx is plan->stats. */
void pb_gen_window(void *ctx, int64_t start_ns, int64_t end_ns);

#endif
