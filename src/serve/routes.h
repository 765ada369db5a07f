/*
 * routes.h — pixserve's routes as one table: path, metric label, allowed
 * methods, and for routes that take request bodies the request kind and
 * API dialect they speak. Adding a request kind's route is a row here (and
 * a px_route slot for its metrics), not code in the HTTP layer.
 */
#ifndef PX_SERVE_ROUTES_H
#define PX_SERVE_ROUTES_H

#include "core/buf.h"

/* The API a route speaks: pixserve's own (/api/v1/...), the seed
 * documents' (POST /inpaint, POST /api/v1/generate) or OpenAI's images API
 * (POST /v1/images/generations). Each kind decides what a dialect means for
 * its bodies and replies. */
enum px_dialect { PX_DIALECT_V1, PX_DIALECT_SEED, PX_DIALECT_OPENAI };

/* Metric slots: one per labelled route. */
enum px_route {
    PX_ROUTE_INPAINT_V1,   /* POST /api/v1/inpaint */
    PX_ROUTE_INPAINT_SEED, /* POST /inpaint */
    PX_ROUTE_GENERATE,     /* POST /api/v1/generate, /api/v1/generate_async */
    PX_ROUTE_GENERATE_OPENAI, /* POST /v1/images/generations */
    PX_ROUTE_JOBS,         /* /api/v1/jobs[/...] */
    PX_ROUTE_ENGINES,      /* GET /api/v1/engines */
    PX_ROUTE_LORAS,        /* /api/v1/loras[/{name}] */
    PX_ROUTE_OUTPUTS,      /* GET /outputs/<name> */
    PX_ROUTE_HEALTHZ,
    PX_ROUTE_READYZ,
    PX_ROUTE_METRICS,
    PX_ROUTE_IOPAINT,  /* IOPaint's frontend calls: /api/v1/server-config, model, ... */
    PX_ROUTE_SOCKETIO, /* /socket.io/ (IOPaint's progress channel) */
    PX_ROUTE_UI,    /* GET /, /dashboard, /ui/<file> (the web UI) */
    PX_ROUTE_OTHER, /* anything else (404/405) */
    PX_ROUTE_COUNT
};

typedef struct px_kind px_kind;

#define PX_ROUTE_LISTED 4

typedef struct px_route_def {
    enum px_route id;
    const char *path;    /* NULL: the web UI's paths (static.h) */
    int prefix;          /* path is a prefix (/outputs/<name>) */
    const char *methods; /* accepted methods, as the Allow header lists them
                            (GET also accepts HEAD) */
    const px_kind *kind; /* a POST body starts a task of this kind; NULL = none */
    enum px_dialect dialect;
    int async;             /* the task is an async job (the jobs API) */
    const char *listed[PX_ROUTE_LISTED]; /* "METHOD /path" entries of the API index */
} px_route_def;

/* The row for a request path; the web UI's paths give the UI row, anything
 * unknown the "other" row (never NULL). */
const px_route_def *px_route_find(const char *url);

/* The route's path as shown in metric labels ("/api/v1/inpaint", ...,
 * "ui", "other"). */
const char *px_route_label(enum px_route r);

/* Whether method is one the row accepts. */
int px_route_allows(const px_route_def *d, const char *method);

/* Appends the "METHOD path" strings of every route, JSON-quoted and
 * comma-separated, to out (the index's "routes"). Returns 0 or the
 * buffer's error. */
int px_routes_list_json(px_buf *out);

#endif
