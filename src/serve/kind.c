/*
 * kind.c — the registry of request kinds and the helpers kinds share (see
 * kind.h): the run adapters over px_engine_item payloads (plain and
 * continuous) and batch keys. Add a kind to px_kinds here and its routes in routes.c.
 */
#include "serve/kind.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "serve/kind_generate.h"
#include "serve/kind_inpaint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const px_kind *const px_kinds[] = {&px_kind_inpaint, &px_kind_generate, NULL};

const px_kind *px_kind_find(const char *name)
{
    for (int i = 0; name && px_kinds[i]; i++)
        if (!strcmp(px_kinds[i]->name, name)) return px_kinds[i];
    return NULL;
}

int px_kind_index(const px_kind *k)
{
    for (int i = 0; k && px_kinds[i]; i++)
        if (px_kinds[i] == k) return i;
    return 0;
}

void px_kind_register_metrics(px_metrics *m)
{
    for (int i = 0; px_kinds[i] && i < PX_METRICS_MAX_KINDS; i++) {
        const px_kind *k = px_kinds[i];
        const char *const stages[PX_STAGE_COUNT] = {
            [PX_STAGE_QUEUE] = "queue", [PX_STAGE_DECODE] = k->prepare_stage,
            [PX_STAGE_INFER] = k->infer_stage, [PX_STAGE_ENCODE] = k->finish_stage};
        px_metrics_set_kind(m, i, k->name, stages);
    }
}

int px_kind_error_json(int code, const char *msg, px_buf *out)
{
    px_buf_puts(out, "{\"error\":{\"code\":");
    px_json_str(out, px_err_name(code));
    px_buf_puts(out, ",\"message\":");
    px_json_str(out, msg);
    px_buf_puts(out, "},\"errors\":");
    px_json_str(out, msg);
    return px_buf_puts(out, "}\n");
}

uint64_t px_kind_key3(int a, int b, int c)
{
    const uint64_t m = (1u << 21) - 1;
    return ((uint64_t)a & m) << 42 | ((uint64_t)b & m) << 21 | ((uint64_t)c & m);
}

/* An engine item for scheduler item si: its payload, with the cancel flag
 * and the progress callback wired to si. */
static void wire(px_engine_item *dst, px_sched_item *si)
{
    *dst = *(const px_engine_item *)si->payload;
    dst->cancel = &si->cancel;
    dst->progress = px_sched_progress;
    dst->progress_arg = si;
}

/* The engine's results back into si's payload and its status. */
static void unwire(const px_engine_item *src, px_sched_item *si)
{
    px_engine_item *p = si->payload;
    *p = *src;
    p->cancel = NULL; /* the scheduler item's flag does not outlive the run */
    p->progress = NULL;
    p->progress_arg = NULL;
    si->status = src->status;
    memcpy(si->err, src->err, sizeof si->err);
}

void px_kind_run_engine_items(px_engine *e, px_sched_item *const *items, int n)
{
    px_engine_item one, *batch = n == 1 ? &one : px_alloc_array((size_t)n, sizeof *batch);
    if (!batch) {
        for (int i = 0; i < n; i++) {
            items[i]->status = PX_ENOMEM;
            snprintf(items[i]->err, sizeof items[i]->err, "out of memory forming a batch");
        }
        return;
    }
    for (int i = 0; i < n; i++) wire(&batch[i], items[i]);
    px_engine_run(e, batch, n);
    for (int i = 0; i < n; i++) unwire(&batch[i], items[i]);
    if (batch != &one) free(batch);
}

/* A continuous batch's engine items: slots the engine holds pointers to
 * while their scheduler items run (a run never has more than
 * PX_SCHED_MAX_BATCH at once). */
typedef struct join_run {
    px_sched_run *run;
    px_engine_item slot[PX_SCHED_MAX_BATCH];
    px_sched_item *owner[PX_SCHED_MAX_BATCH]; /* NULL: a free slot */
} join_run;

static px_engine_item *take_slot(join_run *j, px_sched_item *si)
{
    for (int i = 0; i < PX_SCHED_MAX_BATCH; i++)
        if (!j->owner[i]) {
            j->owner[i] = si;
            wire(&j->slot[i], si);
            return &j->slot[i];
        }
    return NULL; /* unreachable: the scheduler caps a run's items */
}

static int feed_join(void *ctx, px_engine_item **items, int max)
{
    join_run *j = ctx;
    px_sched_item *got[PX_SCHED_MAX_BATCH];
    int n = px_sched_join(j->run, got, max < PX_SCHED_MAX_BATCH ? max : PX_SCHED_MAX_BATCH);
    for (int i = 0; i < n; i++) items[i] = take_slot(j, got[i]);
    return n;
}

static void feed_done(void *ctx, px_engine_item *it)
{
    join_run *j = ctx;
    int i = (int)(it - j->slot);
    px_sched_item *si = j->owner[i];
    j->owner[i] = NULL;
    unwire(it, si);
    px_sched_finish(j->run, si); /* may free the payload: unwired first */
}

void px_kind_run_engine_items_join(px_engine *e, px_sched_item *const *items, int n,
                                   px_sched_run *run)
{
    join_run *j = calloc(1, sizeof *j);
    if (!j) {
        for (int i = 0; i < n; i++) {
            items[i]->status = PX_ENOMEM;
            snprintf(items[i]->err, sizeof items[i]->err, "out of memory forming a batch");
            px_sched_finish(run, items[i]);
        }
        return;
    }
    j->run = run;
    px_engine_item *first[PX_SCHED_MAX_BATCH];
    for (int i = 0; i < n; i++) first[i] = take_slot(j, items[i]);
    px_engine_feed feed = {.join = feed_join, .done = feed_done, .ctx = j};
    int rc = px_engine_run_feed(e, first, n, &feed);
    /* Items the engine did not end (it refused the call): ended here. */
    for (int i = 0; i < PX_SCHED_MAX_BATCH; i++)
        if (j->owner[i]) {
            if (!j->slot[i].status)
                j->slot[i].status = px_errf(j->slot[i].err, sizeof j->slot[i].err,
                                            rc ? rc : PX_EIO, "the engine did not run the item");
            feed_done(j, &j->slot[i]);
        }
    free(j);
}
