/*
 * tokenizer_impl.h — the tokenizer's tables, shared by its loader
 * (tokenizer_load.c, which fills them from the files) and its encoder
 * (tokenizer.c, which only reads them). Not for other modules.
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

#endif
