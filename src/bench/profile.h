/*
 * profile.h — what pixbench sends and how it judges the reply, per target
 * API: `pixserve` (POST /api/v1/inpaint, JSON, image reply), `seed-inpaint`
 * (the seed reports' POST /inpaint with return_type), `iopaint` (IOPaint's
 * /api/v1/inpaint JSON with data URLs and its option fields), `generate`
 * (the seed's /api/v1/generate text-to-image JSON), `openai-images` (OpenAI's
 * POST /v1/images/generations) and `raw` (any method, path, body file and
 * headers).
 *
 * A workload is the set of prepared requests (one per payload) whose heads
 * and bodies are built once and shared by every connection, plus the check
 * that makes a fast wrong answer an error.
 */
#ifndef PB_PROFILE_H
#define PB_PROFILE_H

#include "bench/loop.h"
#include "bench/payload.h"
#include "bench/spec.h"

enum pb_profile_kind { PB_PROF_PIXSERVE, PB_PROF_SEED, PB_PROF_IOPAINT, PB_PROF_GENERATE, PB_PROF_RAW, PB_PROF_OPENAI };

/* The text-to-image profiles (generate, openai-images). */
#define PB_PROF_IS_GEN(k) ((k) == PB_PROF_GENERATE || (k) == PB_PROF_OPENAI)

/* none: status only; basic: + content type and image format/size from the
 * header bytes; full: + decode the image (or JSON) and compare its size. */
enum pb_check_level { PB_CHECK_NONE, PB_CHECK_BASIC, PB_CHECK_FULL };

#define PB_MAX_HEADERS 16
#define PB_MAX_LORAS 8

/* A LoRA a generate request names ("loras": [{"name", "scale"}]). */
typedef struct pb_lora {
    char name[72];
    double scale;
} pb_lora;

typedef struct pb_profile_opts {
    enum pb_profile_kind kind;
    enum pb_check_level check;
    const char *host_header;  /* "127.0.0.1:7860" */
    const char *path;         /* overrides the profile's path ("/base/api/v1/inpaint") */
    const char *method;       /* raw; default GET (POST when a body is given) */
    const char *body_file;    /* raw */
    const char *headers[PB_MAX_HEADERS]; /* extra "Name: value" lines, any profile */
    int nheaders;
    const char *return_type;  /* seed-inpaint: "image_url" (default) or "base64" */
    const char *engine;       /* pixserve: optional engine field */
    /* generate, openai-images: one request per prompt (prompts NULL: prompt) */
    const char *const *prompts;
    int nprompts;
    const char *prompt, *negative_prompt;
    int width, height, steps;
    long long gen_seed;
    double cfg_scale;
    int cfg_set;              /* cfg_scale was given (else the seed's 7.5) */
    /* generate, openai-images: LoRAs every request names, or with lora_mix
     * request k names only LoRA k mod nloras (so a server that batches sees
     * requests with different LoRAs side by side) */
    pb_lora loras[PB_MAX_LORAS];
    int nloras;
    int lora_mix;
} pb_profile_opts;

typedef struct pb_workload {
    pb_request *reqs;
    int nreqs;
    uint8_t **owned; /* heads and bodies, freed by pb_workload_free */
    int nowned;
    pb_check_fn check;
    void *check_ctx;  /* the opts' check level and kind (owned) */
    size_t body_max;  /* replies kept for the check up to this */
} pb_workload;

/* "pixserve", "seed-inpaint", ... → kind; -1 if unknown. */
int pb_profile_parse(const char *name);
const char *pb_profile_name(enum pb_profile_kind k);
/* The profile's default path. */
const char *pb_profile_path(enum pb_profile_kind k);

/* Parses --lora's NAME[:SCALE] (scale 1 if absent) into the next slot of
 * o->loras. Returns 0 or PX_EINVAL with a message. */
int pb_profile_add_lora(pb_profile_opts *o, const char *arg, char *err, size_t errlen);

/* Builds the requests: one per payload for the image profiles, one per
 * prompt (times the LoRAs with lora_mix) for the text-to-image ones (payloads may be NULL/0 for those and
 * raw). Returns 0 or PX_E* with a message; the
 * caller frees out with pb_workload_free (payloads may be freed at once:
 * their bytes are copied into the bodies once). */
int pb_workload_build(const pb_profile_opts *o, const pb_payload *payloads, int npayloads,
                      pb_workload *out, char *err, size_t errlen);
void pb_workload_free(pb_workload *w);

#endif
