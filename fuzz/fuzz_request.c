/*
 * fuzz_request.c — libFuzzer target for the JSON inpaint-request parser
 * (both dialects): any body must parse or fail with a message, never crash,
 * leak or take more than linear time.
 */
#include "serve/request.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    /* The first byte picks the dialect so one corpus covers both. */
    enum px_dialect d = (data[0] & 1) ? PX_DIALECT_SEED : PX_DIALECT_V1;
    px_inpaint_req req;
    char err[256];
    err[0] = 0;
    int rc = px_req_parse_json((const char *)data + 1, size - 1, d, 1 << 20, &req, err, sizeof err);
    if (rc == 0) {
        if (!req.image || !req.mask || req.image_len == 0 || req.mask_len == 0) __builtin_trap();
        px_req_free(&req);
    } else if (err[0] == 0) {
        __builtin_trap(); /* every failure must say why */
    }
    return 0;
}
