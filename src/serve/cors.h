/*
 * cors.h — cross-origin requests (--cors-origin ORIGIN[,ORIGIN...] or *):
 * a web frontend served from another origin (IOPaint's dev server, a page
 * on another port) may call the API. Off by default: without the flag no
 * Access-Control-* header is ever sent, and browsers keep other origins
 * out. Preflights (OPTIONS with Access-Control-Request-Method) are answered
 * before routing, so they work on every route.
 */
#ifndef PX_SERVE_CORS_H
#define PX_SERVE_CORS_H

#include "serve/config.h"

#include <microhttpd.h>

/* The response headers a script may read besides the safelisted ones. */
#define PX_CORS_EXPOSED                                                                            \
    "X-Seed, Server-Timing, Retry-After, Location, Content-Disposition, X-Width, X-Height"

/* Adds Access-Control-Allow-Origin (the allowed Origin, or *), Vary: Origin
 * and the exposed headers to resp when CORS is on and the request's Origin
 * is allowed; nothing otherwise. */
void px_cors_headers(const px_serve_config *cfg, struct MHD_Connection *c,
                     struct MHD_Response *resp);

/* Whether the request is a CORS preflight that this server answers: CORS
 * on, method OPTIONS, an Origin and an Access-Control-Request-Method. */
int px_cors_is_preflight(const px_serve_config *cfg, struct MHD_Connection *c, const char *method);

/* The empty 204 reply to a preflight, with the allowed methods and the
 * requested headers (those made of header-name characters) and a max age;
 * NULL when out of memory. Its Allow-Origin is added by px_cors_headers. */
struct MHD_Response *px_cors_preflight(struct MHD_Connection *c);

#endif
