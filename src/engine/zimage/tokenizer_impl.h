/*
 * tokenizer_impl.h — the tokenizer's tables, shared by its loaders
 * (tokenizer_load.c and tokenizer_json.c, which fill them from the files)
 * and its encoder (tokenizer.c, which only reads them). Not for other
 * modules.
 *
 * Tokens are kept as their raw bytes (the byte-level strings of the files
 * mapped back through the GPT-2 table), so BPE runs on bytes and merges are
 * looked up by id pairs: no strings are built while encoding.
 */
#ifndef PX_ENGINE_ZIMAGE_TOKENIZER_IMPL_H
#define PX_ENGINE_ZIMAGE_TOKENIZER_IMPL_H

#include "engine/zimage/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where an id's bytes lie in the arena; len 0 = no such id. */
typedef struct zt_span {
    uint32_t off, len;
} zt_span;

/* One merge: the pair (left id, right id) packed in key, its rank (lower
 * merges first) and the id of the merged token. key 0 marks an empty slot
 * (ids are stored +1 so that the pair (0, 0) is not 0). */
typedef struct zt_merge {
    uint64_t key;
    int32_t rank;
    int32_t id;
} zt_merge;

typedef struct zt_added {
    uint32_t off, len; /* content in the arena */
    int32_t id;
    bool special, lstrip, rstrip;
} zt_added;

enum { ZT_VOCAB = 1, ZT_ADDED = 2, ZT_SPECIAL = 4 };

struct zi_tok {
    uint8_t *arena; /* raw bytes of every token, back to back */
    size_t arena_len, arena_cap;
    zt_span *tok;   /* [nids] id -> bytes */
    uint8_t *flags; /* [nids] ZT_* */
    int32_t nids;   /* largest id + 1 */

    int32_t *vhash; /* open addressing over model-vocab ids by bytes; -1 empty */
    uint32_t vmask;

    zt_merge *mtab;
    uint32_t mmask;
    int32_t nmerges;

    int32_t byte_id[256]; /* id of each single byte, -1 if the vocab lacks it */

    zt_added *added;     /* sorted by first byte, then longest first */
    size_t nadded;
    uint32_t abyte[257]; /* added[abyte[b] .. abyte[b+1]) start with byte b */

    pcre2_code *re; /* pre-tokenizer; NULL = each section is one word */
    bool jit;
    bool nfc;
    bool ignore_merges;
    bool fuse_unk;
    int32_t unk; /* -1 = unknown bytes are dropped */

    int32_t im_start, im_end; /* -1 when absent */
};

/* The model vocabulary's id for these raw bytes, or -1. */
int32_t zt_vocab_find(const zi_tok *t, const uint8_t *s, size_t len);

/* The merge of ids (a, b), or NULL. */
const zt_merge *zt_merge_find(const zi_tok *t, int32_t a, int32_t b);

/* Byte offset of the first invalid UTF-8 sequence in s[0..len), or len. */
size_t zt_utf8_check(const uint8_t *s, size_t len);

/* ---- the table builders both readers use (tokenizer_load.c) ----------------
 * Each returns 0 or a PX_E* code with err naming the file (name) and the
 * offending entry. */

/* An added token as read, before it enters the tables. */
typedef struct zt_added_in {
    int32_t id;
    const char *content; /* points into the parsed JSON */
    bool special, lstrip, rstrip;
} zt_added_in;

/* An optional boolean field: absent/null = def; -1 if it is not a bool. */
int zt_opt_bool(const cJSON *o, const char *key, bool def, bool *out);

/* A {"byte-level token": id, ...} object (where names it in messages) with
 * room for ids up to max_added. */
int zt_load_vocab(zi_tok *t, const cJSON *vocab, const char *name, const char *where,
                  int32_t max_added, char *err, size_t errlen);

/* Sizes the merge table for n merges, then adds "a" + "b" of each rank. */
int zt_merges_alloc(zi_tok *t, size_t n, const char *name, char *err, size_t errlen);
int zt_add_merge(zi_tok *t, const char *a, const char *b, int32_t rank, const char *name, char *err,
                 size_t errlen);

/* tokenizer.json's added_tokens array, or (keyed) tokenizer_config.json's
 * added_tokens_decoder object; *list is malloc'd, the caller frees it. */
int zt_collect_added(const cJSON *src, bool keyed, zt_added_in **list, size_t *n, int32_t *max_id,
                     const char *name, char *err, size_t errlen);

/* Enters the collected added tokens (after the vocabulary). */
int zt_install_added(zi_tok *t, const zt_added_in *in, size_t n, const char *name, char *err,
                     size_t errlen);

/* The last step of every reader: single-byte ids, template ids, unk (the
 * JSON value or NULL), the pre-tokenizer regex (NULL = none). */
int zt_finish(zi_tok *t, const cJSON *unk, const char *regex, const char *name, char *err,
              size_t errlen);

/* Parses a JSON text; *root is the caller's to cJSON_Delete. */
int zt_parse_json(const char *json, size_t len, const char *name, cJSON **root, char *err,
                  size_t errlen);

/* Hands the freed parse memory back to the system after a load. */
void zt_release_parse_memory(void);

#endif
