/*
 * server_loras.c — the LoRA routes over the registry (loras.h; docs/api.md,
 * "LoRAs"):
 *
 *   GET    /api/v1/loras          what requests may name, and what is loaded
 *   POST   /api/v1/loras          register one: JSON {"name", "file"} for a
 *                                 file in --lora-dir, or an upload (raw
 *                                 application/octet-stream body, ?name=)
 *   GET    /api/v1/loras/{name}   one of them
 *   DELETE /api/v1/loras/{name}   unregister and unload it (requests using
 *                                 it finish with it)
 *
 * Registration opens the file on a text-to-image engine (the first loaded,
 * or ?engine= / "engine") so a file that does not fit the model is refused
 * at once with the engine's message. Writing an upload and loading can take
 * a while (hundreds of MB), so it runs on a thread of its own with the
 * connection suspended, as a task's request waits: the HTTP threads keep
 * serving. The server waits for registrations before it stops.
 */
#include "serve/server_impl.h"

#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "serve/loras.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum MHD_Result send_json(struct MHD_Connection *c, struct request *r, int status, px_buf *b)
{
    return px_server_send_buf(c, r, status, "application/json", b, NULL, NULL);
}

/* The status of a registration's failure: the file's contents not fitting
 * the model (or an engine without LoRAs) is 422, the rest by its code. */
static int add_status(int code)
{
    switch (code) {
    case PX_ECORRUPT:
    case PX_ETRUNC:
    case PX_EUNSUP: return 422;
    case PX_EBUSY: return 409;
    default: return px_err_http_status(code);
    }
}

/* The engine a registration checks the file on: want (or the first loaded
 * text-to-image engine when want is NULL or ""). */
static px_engine *pick_engine(px_server *s, const char *want, char *err, size_t errlen)
{
    for (int i = 0; i < s->nengines; i++) {
        px_engine *e = s->engines[i];
        if (px_engine_kind_of(e) != PX_ENGINE_GENERATE) continue;
        if (!want || !want[0] || !strcmp(px_engine_name(e), want)) return e;
    }
    if (want && want[0])
        px_errf(err, errlen, PX_EINVAL, "engine '%.40s' is not a loaded text-to-image engine",
                want);
    else
        px_errf(err, errlen, PX_EINVAL, "no text-to-image engine is loaded to check LoRAs on");
    return NULL;
}

/* JSON {"name", "file", "engine"?}: registers a file in --lora-dir. */
static int add_from_json(px_server *s, struct request *r, char *name, size_t namelen,
                         int *replaced, char *err, size_t errlen)
{
    if (r->body.len > 65536) /* cJSON makes a node per value: keep it small */
        return px_errf(err, errlen, PX_ETOOBIG, "a registration's JSON is at most 64 KiB");
    cJSON *root = cJSON_ParseWithLength((const char *)r->body.data, r->body.len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return px_errf(err, errlen, PX_EINVAL,
                       "send JSON {\"name\": ..., \"file\": \"x.safetensors\"} or the file itself "
                       "as application/octet-stream with ?name=");
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "file");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(root, "engine");
    int rc = 0;
    if (!cJSON_IsString(n) || !cJSON_IsString(f))
        rc = px_errf(err, errlen, PX_EINVAL, "fields 'name' and 'file' must be strings");
    else if (en && !cJSON_IsString(en))
        rc = px_errf(err, errlen, PX_EINVAL, "field 'engine' must be a string");
    px_engine *e = rc ? NULL : pick_engine(s, en ? en->valuestring : NULL, err, errlen);
    if (!rc && !e) rc = PX_EINVAL;
    if (!rc) {
        snprintf(name, namelen, "%s", n->valuestring);
        rc = px_loras_add_file(s->loras, e, n->valuestring, f->valuestring, replaced, err,
                               errlen);
    }
    cJSON_Delete(root);
    return rc;
}

/* The body is the file (?name=NAME, ?engine=EN): written into --lora-dir. */
static int add_from_upload(px_server *s, struct request *r, const char *n, const char *en,
                           char *name, size_t namelen, int *replaced, char *err, size_t errlen)
{
    if (!n[0])
        return px_errf(err, errlen, PX_EINVAL,
                       "send JSON {\"name\": ..., \"file\": \"x.safetensors\"} (Content-Type: "
                       "application/json), or upload the file as application/octet-stream to "
                       "/api/v1/loras?name=NAME");
    if (!r->body.len) return px_errf(err, errlen, PX_EINVAL, "the uploaded LoRA file is empty");
    px_engine *e = pick_engine(s, en, err, errlen);
    if (!e) return PX_EINVAL;
    snprintf(name, namelen, "%.*s", PX_LORA_NAME_MAX, n);
    return px_loras_add_upload(s->loras, e, n, r->body.data, r->body.len, replaced, err, errlen);
}

/* A registration in flight (its own thread; the connection is suspended). */
struct reg {
    px_server *s;
    struct request *r;
    int json;
    char qname[160], qengine[48]; /* an upload's ?name= and ?engine= */
};

static void *reg_main(void *arg)
{
    struct reg *g = arg;
    px_server *s = g->s;
    struct request *r = g->r;
    char err[1024] = "", name[PX_LORA_NAME_MAX + 1] = "";
    int replaced = 0;
    int rc = g->json ? add_from_json(s, r, name, sizeof name, &replaced, err, sizeof err)
                     : add_from_upload(s, r, g->qname, g->qengine, name, sizeof name, &replaced,
                                       err, sizeof err);
    px_buf b;
    px_buf_init(&b, 1 << 20);
    if (rc) {
        px_kind_error_json(rc, err, &b);
        px_metrics_error(s->metrics, rc);
        r->deferred_status = add_status(rc);
        PX_DEBUG("%s -> %d %s", px_route_label(r->route->id), r->deferred_status, err);
    } else {
        px_buf_printf(&b, "{\"replaced\":%s,\"lora\":", replaced ? "true" : "false");
        px_loras_json(s->loras, name, &b);
        px_buf_puts(&b, "}\n");
        r->deferred_status = replaced ? 200 : 201;
    }
    r->deferred = b;
    free(g);
    /* r may be completed and freed as soon as it is resumed. */
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&s->registering, 1);
    return NULL;
}

static enum MHD_Result add(px_server *s, struct MHD_Connection *c, struct request *r)
{
    if (!atomic_load(&s->ready) || atomic_load(&s->draining))
        return px_server_send_error(s, c, r, 0, PX_EUNAVAIL,
                                    atomic_load(&s->ready) ? "the service is shutting down"
                                                           : "the engines are still loading",
                                    "Retry-After", "1");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
    const char *en = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "engine");
    struct reg *g = calloc(1, sizeof *g);
    if (!g) return px_server_send_error(s, c, r, 0, PX_ENOMEM, "out of memory", NULL, NULL);
    *g = (struct reg){.s = s, .r = r, .json = ct && !strncasecmp(ct, "application/json", 16)};
    snprintf(g->qname, sizeof g->qname, "%s", n ? n : "");
    snprintf(g->qengine, sizeof g->qengine, "%s", en ? en : "");
    atomic_fetch_add(&s->registering, 1);
    MHD_suspend_connection(c);
    pthread_attr_t at;
    pthread_t th;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int bad = pthread_create(&th, &at, reg_main, g);
    pthread_attr_destroy(&at);
    if (bad) reg_main(g); /* no thread to spare: here, then */
    return MHD_YES;
}

/* The reply of a registration, once its thread has resumed the connection. */
enum MHD_Result px_server_send_deferred(struct MHD_Connection *c, struct request *r)
{
    return px_server_send_buf(c, r, r->deferred_status, "application/json", &r->deferred, NULL,
                              NULL);
}

enum MHD_Result px_server_serve_loras(px_server *s, struct MHD_Connection *c, struct request *r,
                                      const char *method, const char *rest)
{
    if (!s->loras)
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND,
                                    "LoRAs are off on this server: start it with --lora-dir DIR",
                                    NULL, NULL);
    int get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (rest[0] == '/') rest++;
    if (!rest[0] && !strcmp(method, MHD_HTTP_METHOD_POST)) return add(s, c, r);
    px_buf b;
    px_buf_init(&b, 16 << 20);
    if (!rest[0] && get) {
        px_loras_json(s->loras, NULL, &b);
        px_buf_puts(&b, "\n");
        return send_json(c, r, 200, &b);
    }
    char err[320];
    if (get) {
        if (px_loras_json(s->loras, rest, &b) == PX_ENOTFOUND) {
            px_buf_free(&b);
            char names[200];
            px_loras_names(s->loras, names, sizeof names);
            snprintf(err, sizeof err, "no LoRA named '%.64s' (available: %s)", rest, names);
            return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, err, NULL, NULL);
        }
        px_buf_puts(&b, "\n");
        return send_json(c, r, 200, &b);
    }
    /* DELETE (the route allows nothing else here) */
    if (px_loras_remove(s->loras, rest, err, sizeof err))
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, err, NULL, NULL);
    px_buf_puts(&b, "{\"removed\":");
    px_json_str(&b, rest);
    px_buf_puts(&b, "}\n");
    return send_json(c, r, 200, &b);
}
