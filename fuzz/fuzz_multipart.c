/*
 * fuzz_multipart.c — libFuzzer target for multipart/form-data requests: the
 * input's first line is the Content-Type header value, the rest the body.
 * Parts found must lie inside the body.
 */
#include "serve/multipart.h"
#include "serve/request.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 200 ? size : 200);
    if (!nl) return 0;
    char ct[201];
    size_t ctlen = (size_t)(nl - data);
    memcpy(ct, data, ctlen);
    ct[ctlen] = 0;
    const uint8_t *body = nl + 1;
    size_t n = size - ctlen - 1;

    char boundary[PX_MULTIPART_MAX_BOUNDARY + 1], err[256];
    if (px_multipart_boundary(ct, boundary, err, sizeof err) == 0) {
        px_part parts[8];
        int np = 0;
        if (px_multipart_parse(body, n, boundary, parts, 8, &np, err, sizeof err) == 0) {
            for (int i = 0; i < np; i++)
                if (parts[i].data < body || parts[i].data + parts[i].len > body + n)
                    __builtin_trap();
        }
    }
    px_inpaint_req req;
    if (px_req_parse_multipart(ct, body, n, PX_DIALECT_V1, 1 << 20, &req, err, sizeof err) == 0)
        px_req_free(&req);
    return 0;
}
