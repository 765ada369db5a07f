/*
 * server.h — the pixserve HTTP service: routes, request bodies, the worker
 * pool behind them, replies and graceful shutdown.
 *
 * HTTP I/O runs on libmicrohttpd's threads; a finished request body is
 * parsed there (cheap, and malformed input is refused before it takes a
 * queue slot), then the job goes to the worker pool and the connection is
 * suspended until the job reaches a final state. Workers decode, run the
 * engine, encode and prepare the reply; the HTTP thread only sends it.
 */
#ifndef PX_SERVE_SERVER_H
#define PX_SERVE_SERVER_H

#include "serve/config.h"

#include <stddef.h>

typedef struct px_server px_server;

/*
 * Loads the engines, opens the outputs directory, starts the workers and
 * binds the socket. cfg must outlive the server. Returns 0, or an error with a
 * message (unknown engine, port in use, ...); *out is then NULL.
 */
int px_server_start(const px_serve_config *cfg, px_server **out, char *err, size_t errlen);

/* The TCP port actually bound (useful with port 0). */
int px_server_port(const px_server *s);

/*
 * Graceful stop: /readyz turns 503, new connections are refused, requests
 * already received are finished and answered (new ones on open keep-alive
 * connections get 503), then everything is freed. Waits at most
 * grace_ms for in-flight requests before closing the remaining connections.
 */
void px_server_stop(px_server *s, int grace_ms);

#endif
