/*
 * fuzz_generate.c — libFuzzer target for the text-to-image request parser
 * (kind_generate.c, both dialects: pixserve's fields and OpenAI's, with the
 * "loras" list of either): any body must parse into a request within the
 * limits or fail with a message, never crash or leak.
 */
#include "core/err.h"
#include "serve/config.h"
#include "serve/kind_generate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    static px_serve_config cfg;
    static int init;
    if (!init) px_config_defaults(&cfg), init = 1;
    px_kind_env env = {.cfg = &cfg};
    /* The first byte picks the dialect so one corpus covers both. */
    px_kind_ctx c = {.env = &env, .dialect = (data[0] & 1) ? PX_DIALECT_OPENAI : PX_DIALECT_SEED,
                     .content_type = "application/json", .host = "localhost"};
    px_kind_opts o = {.priority = -1};
    void *req = NULL;
    char err[320];
    err[0] = 0;
    int rc = px_kind_generate.parse(&c, data + 1, size - 1, &req, &o, err, sizeof err);
    if (rc != 0 && err[0] == 0) __builtin_trap(); /* every failure must say why */
    if (rc == 0 && (o.timeout_ms < 0 || o.priority > 2)) __builtin_trap();
    if (req) px_kind_generate.free(req);
    return 0;
}
