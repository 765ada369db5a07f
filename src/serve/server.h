/*
 * server.h — the pixserve HTTP service: routes, request bodies, the worker
 * pool behind them, replies and graceful shutdown.
 *
 * HTTP I/O runs on libmicrohttpd's threads; a finished request body goes to
 * a task (task.h: CPU pool for parsing, decoding and encoding, the
 * device scheduler for the engines) and the connection is suspended until
 * the task ends; the HTTP thread only sends the reply the task prepared.
 */
#ifndef PX_SERVE_SERVER_H
#define PX_SERVE_SERVER_H

#include "serve/config.h"

#include <stddef.h>

typedef struct px_server px_server;

/*
 * Checks the engine names, opens the outputs directory, binds the socket and
 * starts loading and warming the engines on a background thread (/readyz
 * turns 200 when done). cfg must outlive the server. Returns 0, or an error
 * with a message (unknown engine, port in use, ...); *out is then NULL.
 */
int px_server_start(const px_serve_config *cfg, px_server **out, char *err, size_t errlen);

/* The TCP port actually bound (useful with port 0). */
int px_server_port(const px_server *s);

/* NULL while loading or once ready; the reason if loading the engines
 * failed (the service then never becomes ready and should be stopped). */
const char *px_server_failed(px_server *s);

/*
 * Graceful stop: /readyz turns 503, new connections are refused, requests
 * already received are finished and answered (new ones on open keep-alive
 * connections get 503), then everything is freed. Waits at most
 * grace_ms for in-flight requests before closing the remaining connections.
 */
void px_server_stop(px_server *s, int grace_ms);

#endif
