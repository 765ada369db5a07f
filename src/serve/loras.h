/*
 * loras.h — the server's LoRA registry (--lora-dir): which LoRAs requests
 * may name, and which are loaded on which engine.
 *
 * A LoRA is a name (px_lora_name_ok) for a .safetensors file in the
 * registry's directory: every *.safetensors file found there at start-up
 * (its name is the file name without the extension), plus those
 * registered later (a file already there, or an upload written into the
 * directory), less those removed. A LoRA is opened on an engine
 * (px_engine_lora_open) the first time a request uses it there, or when it
 * is registered (so a bad file is refused at once), and kept loaded.
 *
 * Requests hold what they use (px_loras_acquire / px_loras_release): a
 * LoRA removed or evicted while held stays open until the last holder lets
 * go. Loaded LoRAs that nobody holds are closed least recently used first
 * while the loaded bytes exceed the cache bound; held ones are never
 * closed, so the bound can be exceeded by what running requests use.
 *
 * Thread-safe. Loads and registrations run one at a time (they read
 * files); acquiring a loaded LoRA, releasing, listing and removing take
 * one short lock and never wait for a load.
 */
#ifndef PX_SERVE_LORAS_H
#define PX_SERVE_LORAS_H

#include "core/buf.h"
#include "engine/engine.h"

#include <stddef.h>
#include <stdint.h>

#define PX_LORA_NAME_MAX 64  /* characters of a name */
#define PX_LORAS_MAX 1024    /* registered LoRAs at once */
#define PX_LORA_MAX_SCALE 4.0 /* |scale| a request may ask for */

typedef struct px_loras px_loras;         /* opaque */
typedef struct px_lora_hold px_lora_hold; /* one LoRA open on one engine */

/* Whether name is a valid LoRA name: 1..PX_LORA_NAME_MAX characters of
 * A-Z a-z 0-9 _ . -, starting with a letter, digit or '_' (so that
 * NAME.safetensors is a plain file name in the directory). */
int px_lora_name_ok(const char *name);

/*
 * Opens the registry over dir (which must exist), listing its
 * *.safetensors files; cache_bytes bounds the loaded LoRAs nobody holds
 * (0 = unbounded). Returns 0 with *out (caller closes), PX_ENOTFOUND or
 * PX_EIO for the directory, with a message.
 */
int px_loras_open(const char *dir, uint64_t cache_bytes, px_loras **out, char *err,
                  size_t errlen);

/* Closes every loaded LoRA and frees the registry. Every hold must have
 * been released. NULL is allowed. */
void px_loras_close(px_loras *r);

/*
 * Holds the LoRA called name as opened on engine e, opening it there first
 * if it is not (recording how long that took). Returns 0 with *out,
 * PX_ENOTFOUND (no such name: err lists the available ones), or the
 * engine's error (PX_EUNSUP: e takes no LoRAs; PX_ECORRUPT: the file does
 * not fit the model, err says what did not match; PX_EIO, PX_ENOMEM).
 * Release *out with px_loras_release.
 */
int px_loras_acquire(px_loras *r, px_engine *e, const char *name, px_lora_hold **out, char *err,
                     size_t errlen);

/* The engine's handle of a held LoRA (valid until released). */
const px_engine_lora *px_lora_hold_lora(const px_lora_hold *h);

/* Lets go of a hold; the LoRA closes now if it was removed meanwhile and
 * this was the last hold. NULL is allowed. */
void px_loras_release(px_loras *r, px_lora_hold *h);

/*
 * Registers name for file, a plain file name in the directory (no path:
 * PX_EINVAL), after opening it on engine e (a file that does not load is
 * refused with the engine's error and not registered; it stays loaded
 * otherwise). A name already registered is replaced (*replaced = 1):
 * requests holding the old one finish with it. Returns 0 or PX_E* with a
 * message (PX_ENOTFOUND: no such file; PX_EBUSY: PX_LORAS_MAX reached).
 */
int px_loras_add_file(px_loras *r, px_engine *e, const char *name, const char *file,
                      int *replaced, char *err, size_t errlen);

/*
 * Registers name for the bytes of an uploaded file: written to a
 * temporary file in the directory, opened on engine e, and renamed to
 * NAME.safetensors only if it loads (else removed, with the engine's
 * error). PX_EINVAL if NAME.safetensors is the file of another registered
 * name. Otherwise as px_loras_add_file.
 */
int px_loras_add_upload(px_loras *r, px_engine *e, const char *name, const void *data,
                        size_t len, int *replaced, char *err, size_t errlen);

/* Unregisters name and closes what nobody holds of it (the file stays).
 * Returns 0 or PX_ENOTFOUND with the available names. */
int px_loras_remove(px_loras *r, const char *name, char *err, size_t errlen);

/* Appends {"cache_limit_bytes", "loaded_bytes", "loras": [...]} (docs/api.md,
 * GET /api/v1/loras) — or, with name non-NULL, that one LoRA's object.
 * Returns 0, PX_ENOTFOUND, or the buffer's error. */
int px_loras_json(px_loras *r, const char *name, px_buf *out);

/* The registered names, ", "-separated, cut with "..." to fit out[n]. */
void px_loras_names(px_loras *r, char *out, size_t n);

/* What the registry holds now, for tests and metrics. */
typedef struct px_loras_stats {
    int registered;       /* names */
    int loaded;           /* LoRAs open on some engine (removed ones still held included) */
    int held;             /* holds not yet released */
    uint64_t loaded_bytes;
} px_loras_stats;

void px_loras_stats_get(px_loras *r, px_loras_stats *s);

#endif
