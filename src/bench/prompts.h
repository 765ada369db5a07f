/*
 * prompts.h — the prompt sets pixbench's text-to-image profiles send
 * (--prompts FILE): one prompt per line, or JSON with categories (such as
 * "simple", "complex scene", "high detail") so a report can say how prompt
 * complexity moves latency. Every stage mixes the set's prompts; without a
 * file the set is the seed report's locustfile prompt.
 *
 * Accepted forms:
 *   text   one prompt per line; blank lines and lines starting with '#' are
 *          skipped, except "# category: NAME", which files the lines after it
 *          under NAME (default category "default")
 *   JSON   ["p1", "p2"]                                 (category "default")
 *          {"simple": ["p1"], "complex scene": ["p2"]}  (key = category)
 *          [{"prompt": "p1", "category": "simple"}, ...] (category optional)
 */
#ifndef PB_PROMPTS_H
#define PB_PROMPTS_H

#include <stddef.h>

#define PB_PROMPTS_MAX 4096        /* prompts in a set */
#define PB_PROMPTS_MAX_CATS 32     /* categories in a set */
#define PB_PROMPT_MAX_LEN 4000     /* characters of one prompt (pixserve's limit) */
#define PB_PROMPTS_MAX_FILE (4u << 20)

/* The seed report's locustfile prompt and negative prompt. */
#define PB_SEED_PROMPT "a beautiful sunset over the ocean, cinematic lighting"
#define PB_SEED_NEGATIVE "blurry, low quality, distorted"

typedef struct pb_prompt {
    char *text; /* NUL-terminated UTF-8, no control characters but tab */
    int cat;    /* index into cats */
} pb_prompt;

typedef struct pb_prompts {
    pb_prompt *p;
    int n;
    char *cats[PB_PROMPTS_MAX_CATS];
    int ncats;
} pb_prompts;

/* Parses a prompts file's bytes (JSON when its first non-blank byte is '['
 * or '{', else text). Returns 0 and a set of at least one prompt, or
 * PX_EINVAL/PX_ECORRUPT/PX_ETOOBIG with a message naming what is wrong (and
 * out empty). The caller frees out with pb_prompts_free. */
int pb_prompts_parse(const char *data, size_t n, pb_prompts *out, char *err, size_t errlen);

/* Reads and parses path. Returns as pb_prompts_parse, or PX_EIO. */
int pb_prompts_load(const char *path, pb_prompts *out, char *err, size_t errlen);

/* The one-prompt set of the seed report (category "seed"). */
void pb_prompts_default(pb_prompts *out);

void pb_prompts_free(pb_prompts *s);

#endif
