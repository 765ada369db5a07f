/*
 * kind.c — the registry of request kinds and the helpers kinds share (see
 * kind.h): the plain run adapter over px_engine_item payloads and batch
 * keys. Add a kind to px_kinds here and its routes in routes.c.
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
    for (int i = 0; i < n; i++) {
        batch[i] = *(const px_engine_item *)items[i]->payload;
        batch[i].cancel = &items[i]->cancel;
        batch[i].progress = px_sched_progress;
        batch[i].progress_arg = items[i];
    }
    px_engine_run(e, batch, n);
    for (int i = 0; i < n; i++) {
        px_engine_item *p = items[i]->payload;
        *p = batch[i];
        p->cancel = NULL; /* the scheduler item's flag does not outlive the run */
        p->progress = NULL;
        p->progress_arg = NULL;
        items[i]->status = batch[i].status;
        memcpy(items[i]->err, batch[i].err, sizeof items[i]->err);
    }
    if (batch != &one) free(batch);
}

