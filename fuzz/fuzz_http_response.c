/*
 * fuzz_http_response.c — libFuzzer target for pixbench's HTTP response
 * parser: any bytes, split into reads at positions taken from the input,
 * must parse or fail with a message, never crash, never consume more than
 * it was given, and never grow past the header caps.
 */
#include "bench/http.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    /* byte 0: flags (HEAD, sink on/off, EOF at the end); byte 1: read size */
    int head = data[0] & 1, use_sink = data[0] & 2, eof = data[0] & 4;
    size_t step = (size_t)data[1] + 1;
    data += 2;
    size -= 2;
    px_buf sink;
    px_buf_init(&sink, 4096);
    pb_http_parser p;
    pb_http_init(&p, head, use_sink ? &sink : NULL);
    char err[256];
    size_t off = 0;
    int rc = PB_HTTP_MORE;
    /* Several responses in a row, as on a keep-alive connection. */
    while (off < size) {
        size_t k = size - off < step ? size - off : step;
        size_t used = 0;
        err[0] = 0;
        rc = pb_http_feed(&p, data + off, k, &used, err, sizeof err);
        if (used > k) __builtin_trap();
        off += used;
        if (rc < 0) {
            if (err[0] == 0) __builtin_trap();
            break;
        }
        if (rc == PB_HTTP_DONE) {
            if (p.status < 100 || p.status > 999) __builtin_trap();
            if (use_sink && !p.body_truncated && sink.len != p.body_bytes) __builtin_trap();
            sink.len = 0;
            pb_http_init(&p, head, use_sink ? &sink : NULL);
            rc = PB_HTTP_MORE;
        } else if (used != k) {
            __builtin_trap(); /* MORE must consume everything */
        }
    }
    if (rc == PB_HTTP_MORE && eof) {
        err[0] = 0;
        rc = pb_http_eof(&p, err, sizeof err);
        if (rc < 0 && err[0] == 0) __builtin_trap();
    }
    if (sink.len > sink.max) __builtin_trap();
    px_buf_free(&sink);
    return 0;
}
