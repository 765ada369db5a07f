/*
 * http.h — incremental HTTP/1.1 response parser for the load generator.
 *
 * Bytes are fed as they arrive, split anywhere; the parser keeps only the
 * current partial line (bounded) and the few header values pixbench uses
 * (status, Content-Type, Server-Timing, framing). The body is framed by
 * Content-Length, chunked transfer coding (extensions and trailers are
 * skipped) or the end of the connection; 1xx interim responses are skipped;
 * 204, 304 and replies to HEAD have no body. Header lines, their number and
 * total size are capped so a hostile server cannot make the client grow
 * without bound. The decoded body is appended to an optional capped sink (for
 * response checks) or only counted.
 */
#ifndef PB_HTTP_H
#define PB_HTTP_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

#define PB_HTTP_MAX_LINE 8192         /* one header line */
#define PB_HTTP_MAX_HEADER_BYTES 65536 /* all header (and trailer) lines */
#define PB_HTTP_MAX_HEADERS 128

enum { PB_HTTP_MORE = 0, PB_HTTP_DONE = 1 };

typedef struct pb_http_parser {
    /* private state */
    int state;
    int head; /* the request was HEAD */
    size_t header_bytes;
    int nheaders;
    uint64_t remaining; /* body bytes left (Content-Length or current chunk) */
    char line[PB_HTTP_MAX_LINE];
    size_t line_len;
    px_buf *sink;

    /* results, valid once PB_HTTP_DONE is returned (status as soon as the
     * status line is parsed) */
    int status;         /* e.g. 200 */
    int minor;          /* HTTP/1.minor */
    int keep_alive;     /* the connection may carry another request */
    int chunked;
    int64_t content_length; /* -1 when absent */
    uint64_t body_bytes;    /* decoded body bytes seen */
    int body_truncated;     /* the sink filled up before the body ended */
    uint64_t wire_bytes;    /* bytes consumed, headers included */
    char content_type[128]; /* "" when absent; truncated if longer */
    char server_timing[512]; /* all Server-Timing values joined with ", " */
} pb_http_parser;

/* Prepares p for one response. head: the request was HEAD (no body).
 * sink: where the decoded body goes (NULL: count only); it is not cleared
 * here and is owned by the caller. */
void pb_http_init(pb_http_parser *p, int head, px_buf *sink);

/*
 * Feeds n bytes. Returns PB_HTTP_MORE (all consumed, need more),
 * PB_HTTP_DONE (the response is complete; *used says how many bytes it took,
 * bytes after that belong to no request) or a negative PX_E* code with a
 * message: PX_ECORRUPT (malformed status line, header, length or chunk),
 * PX_ETOOBIG (a header cap). After DONE or an error, call pb_http_init
 * before feeding again.
 */
int pb_http_feed(pb_http_parser *p, const uint8_t *data, size_t n, size_t *used, char *err,
                 size_t errlen);

/* The peer closed the connection: PB_HTTP_DONE if that ends a body framed by
 * the close, else PX_ETRUNC (or PX_EIO when no byte of a response came). */
int pb_http_eof(pb_http_parser *p, char *err, size_t errlen);

/* True once any byte of this response has been consumed. */
int pb_http_started(const pb_http_parser *p);

#endif
