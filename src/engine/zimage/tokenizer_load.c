/*
 * tokenizer_load.c — reads the tokenizer files (untrusted) into the tables of
 * tokenizer_impl.h: finds the files a path holds, reads vocab.json +
 * merges.txt (+ tokenizer_config.json's added_tokens_decoder) itself and
 * hands tokenizer.json to tokenizer_json.c; both readers fill the tables
 * through the builders here (vocabulary, merges, added tokens, the final
 * byte, template and unk ids), so the two layouts cannot drift apart.
 *
 * Only what the Qwen family uses is accepted; anything else that would
 * change the ids (a normaliser other than NFC, BPE dropout, byte fallback,
 * subword affixes, pre-tokenizers other than one regex split and ByteLevel)
 * is refused with PX_EUNSUP rather than silently tokenized differently.
 */
#include "engine/zimage/tokenizer_impl.h"

#include "core/alloc.h"
#include "core/err.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Qwen2/Qwen3's pre-tokenizer: vocab.json + merges.txt name none, so the
 * family's own is used (tokenizer.json names its own: tokenizer_json.c). */
static const char QWEN_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Files above this are refused before reading (the real one is 11 MB). */
#define MAX_FILE ((size_t)256 << 20)

#define FAIL(code, ...) px_errf(err, errlen, (code), __VA_ARGS__)

/* --- the GPT-2 byte <-> unicode map ----------------------------------------------- */

/* Printable Latin-1 bytes stand for themselves; the other 68 bytes are
 * given the code points 256, 257, ... in byte order. */
static int16_t bytelevel_map[256 + 68];
static pthread_once_t bytelevel_once = PTHREAD_ONCE_INIT;

static void bytelevel_init(void)
{
    int next = 256;
    for (int i = 0; i < 256 + 68; i++) bytelevel_map[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        bytelevel_map[keep ? b : next++] = (int16_t)b;
    }
}

static int bytelevel_byte(uint32_t cp)
{
    pthread_once(&bytelevel_once, bytelevel_init);
    return cp < 256 + 68 ? bytelevel_map[cp] : -1;
}

/* Next code point of valid UTF-8 at s[*i] (the caller checked validity). */
static uint32_t utf8_next(const uint8_t *s, size_t *i)
{
    uint32_t c = s[*i];
    int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (n) c &= 0x3Fu >> n;
    (*i)++;
    for (int k = 0; k < n; k++) c = (c << 6) | (s[(*i)++] & 0x3Fu);
    return c;
}

/* --- tables ------------------------------------------------------------------------- */

static int arena_add(zi_tok *t, const uint8_t *s, size_t len, uint32_t *off)
{
    if (len > UINT32_MAX || t->arena_len > UINT32_MAX - len) return PX_ETOOBIG;
    if (t->arena_len + len > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        while (cap < t->arena_len + len) cap *= 2;
        uint8_t *a = realloc(t->arena, cap);
        if (!a) return PX_ENOMEM;
        t->arena = a;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    *off = (uint32_t)t->arena_len;
    t->arena_len += len;
    return 0;
}

static uint64_t hash_bytes(const uint8_t *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key)
{
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 31);
}

/* Smallest power of two holding n entries at most 3/4 full. */
static int table_size(size_t n, uint32_t *mask)
{
    size_t size = 16;
    while (size / 4 * 3 < n) {
        if (size > ((size_t)1 << 30)) return PX_ETOOBIG;
        size *= 2;
    }
    *mask = (uint32_t)(size - 1);
    return 0;
}

int32_t zt_vocab_find(const zi_tok *t, const uint8_t *s, size_t len)
{
    if (!t->vhash) return -1;
    for (uint32_t i = (uint32_t)hash_bytes(s, len) & t->vmask;; i = (i + 1) & t->vmask) {
        int32_t id = t->vhash[i];
        if (id < 0) return -1;
        if (t->tok[id].len == len && !memcmp(t->arena + t->tok[id].off, s, len)) return id;
    }
}

const zt_merge *zt_merge_find(const zi_tok *t, int32_t a, int32_t b)
{
    if (!t->mtab || a < 0 || b < 0) return NULL;
    uint64_t key = ((uint64_t)(a + 1) << 32) | (uint32_t)(b + 1);
    for (uint32_t i = (uint32_t)hash_pair(key) & t->mmask;; i = (i + 1) & t->mmask) {
        if (t->mtab[i].key == key) return &t->mtab[i];
        if (!t->mtab[i].key) return NULL;
    }
}

/* Byte-level text (a vocab or merge entry) -> raw bytes in buf[cap]. */
static int bytelevel_decode(const char *s, uint8_t *buf, size_t cap, size_t *len)
{
    size_t n = strlen(s), i = 0, o = 0;
    if (zt_utf8_check((const uint8_t *)s, n) != n) return PX_ECORRUPT;
    while (i < n) {
        int b = bytelevel_byte(utf8_next((const uint8_t *)s, &i));
        if (b < 0 || o == cap) return PX_ECORRUPT;
        buf[o++] = (uint8_t)b;
    }
    *len = o;
    return 0;
}

/* A JSON number that is an integer id in [0, ZI_TOK_MAX_ID], or -1. */
static int32_t json_id(const cJSON *v)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ZI_TOK_MAX_ID) || d != (double)(int32_t)d) return -1;
    return (int32_t)d;
}

/* Sizes the id tables for ids up to max_id. */
static int alloc_ids(zi_tok *t, int32_t max_id, size_t nvocab)
{
    t->nids = max_id + 1;
    t->tok = calloc((size_t)t->nids, sizeof *t->tok);
    t->flags = calloc((size_t)t->nids, 1);
    if (!t->tok || !t->flags || table_size(nvocab, &t->vmask)) return PX_ENOMEM;
    t->vhash = px_alloc_array((size_t)t->vmask + 1, sizeof *t->vhash);
    if (!t->vhash) return PX_ENOMEM;
    memset(t->vhash, 0xff, ((size_t)t->vmask + 1) * sizeof *t->vhash);
    return 0;
}

/* model.vocab / vocab.json: {"byte-level token": id, ...}. */
int zt_load_vocab(zi_tok *t, const cJSON *vocab, const char *name, const char *where,
                  int32_t max_added, char *err, size_t errlen)
{
    if (!cJSON_IsObject(vocab)) return FAIL(PX_ECORRUPT, "%s: %s is not an object", name, where);
    int32_t max_id = max_added;
    size_t n = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, n++) {
        int32_t id = json_id(e);
        if (id < 0)
            return FAIL(PX_ECORRUPT, "%s: %s: token \"%.40s\" has no integer id in [0, %d]", name,
                        where, e->string, ZI_TOK_MAX_ID);
        if (id > max_id) max_id = id;
    }
    if (!n) return FAIL(PX_ECORRUPT, "%s: %s is empty", name, where);
    if (alloc_ids(t, max_id, n)) return FAIL(PX_ENOMEM, "%s: out of memory", name);
    uint8_t buf[1024];
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = json_id(e);
        size_t len;
        if (bytelevel_decode(e->string, buf, sizeof buf, &len) || !len)
            return FAIL(PX_ECORRUPT,
                        "%s: %s: token \"%.40s\" (id %d) is not a byte-level BPE token "
                        "(empty, too long, or a character outside the GPT-2 byte map)",
                        name, where, e->string, id);
        if (t->tok[id].len)
            return FAIL(PX_ECORRUPT, "%s: %s: id %d is given to two tokens", name, where, id);
        if (zt_vocab_find(t, buf, len) >= 0)
            return FAIL(PX_ECORRUPT, "%s: %s: token \"%.40s\" appears twice", name, where,
                        e->string);
        if (arena_add(t, buf, len, &t->tok[id].off))
            return FAIL(PX_ENOMEM, "%s: out of memory", name);
        t->tok[id].len = (uint32_t)len;
        t->flags[id] = ZT_VOCAB;
        uint32_t i = (uint32_t)hash_bytes(buf, len) & t->vmask;
        while (t->vhash[i] >= 0) i = (i + 1) & t->vmask;
        t->vhash[i] = id;
    }
    return 0;
}

int zt_merges_alloc(zi_tok *t, size_t n, const char *name, char *err, size_t errlen)
{
    if (table_size(n, &t->mmask) ||
        !(t->mtab = px_alloc_array((size_t)t->mmask + 1, sizeof *t->mtab)))
        return FAIL(PX_ENOMEM, "%s: out of memory for %zu merges", name, n);
    memset(t->mtab, 0, ((size_t)t->mmask + 1) * sizeof *t->mtab);
    return 0;
}

/* One merge "a" + "b" (byte-level text) of the given rank. As in Hugging
 * Face's tokenizers, a later duplicate replaces an earlier one. */
int zt_add_merge(zi_tok *t, const char *a, const char *b, int32_t rank, const char *name, char *err,
                 size_t errlen)
{
    uint8_t buf[2048];
    size_t la = 0, lb = 0;
    int32_t ia = -1, ib = -1, im = -1;
    if (!bytelevel_decode(a, buf, 1024, &la)) ia = zt_vocab_find(t, buf, la);
    if (ia >= 0 && !bytelevel_decode(b, buf + la, 1024, &lb)) ib = zt_vocab_find(t, buf + la, lb);
    if (ia >= 0 && ib >= 0) im = zt_vocab_find(t, buf, la + lb);
    if (ia < 0 || ib < 0 || im < 0)
        return FAIL(PX_ECORRUPT, "%s: merge %d (\"%.40s\" \"%.40s\"): %s is not in the vocabulary",
                    name, rank, a, b, ia < 0 ? "the left part" : ib < 0 ? "the right part"
                                                                        : "the merged token");
    uint64_t key = ((uint64_t)(ia + 1) << 32) | (uint32_t)(ib + 1);
    uint32_t i = (uint32_t)hash_pair(key) & t->mmask;
    while (t->mtab[i].key && t->mtab[i].key != key) i = (i + 1) & t->mmask;
    if (!t->mtab[i].key) t->nmerges++;
    t->mtab[i] = (zt_merge){key, rank, im};
    return 0;
}

/* merges.txt: one "a b" per line; a first line "#version..." is a comment. */
static int load_merges_txt(zi_tok *t, const char *txt, size_t len, const char *name, char *err,
                           size_t errlen)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += txt[i] == '\n';
    int rc;
    if ((rc = zt_merges_alloc(t, lines, name, err, errlen))) return rc;
    char line[2048];
    int32_t rank = 0;
    for (size_t i = 0, ln = 1; i < len; ln++) {
        size_t e = i;
        while (e < len && txt[e] != '\n') e++;
        size_t l = e - i;
        if (l && txt[i + l - 1] == '\r') l--;
        bool comment = ln == 1 && l && txt[i] == '#';
        if (l && !comment) {
            if (l >= sizeof line || memchr(txt + i, 0, l))
                return FAIL(PX_ECORRUPT, "%s: line %zu is too long or holds a NUL byte", name, ln);
            memcpy(line, txt + i, l);
            line[l] = 0;
            char *sp = strchr(line, ' ');
            if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' '))
                return FAIL(PX_ECORRUPT, "%s: line %zu is not two tokens joined by one space",
                            name, ln);
            *sp = 0;
            if ((rc = zt_add_merge(t, line, sp + 1, rank++, name, err, errlen))) return rc;
        }
        i = e + 1;
    }
    return 0;
}

/* --- added tokens ------------------------------------------------------------------- */

/* An optional boolean field: absent/null = def; anything else but a bool fails. */
int zt_opt_bool(const cJSON *o, const char *key, bool def, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return -1;
    *out = cJSON_IsTrue(v);
    return 0;
}

/* One added token object (id given separately when keyed by it). */
static int parse_added(const cJSON *o, int32_t id, zt_added_in *a, const char *name,
                       const char *where, char *err, size_t errlen)
{
    if (!cJSON_IsObject(o)) return FAIL(PX_ECORRUPT, "%s: %s: entry is not an object", name, where);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
    if (id < 0) id = json_id(cJSON_GetObjectItemCaseSensitive(o, "id"));
    if (id < 0)
        return FAIL(PX_ECORRUPT, "%s: %s: an entry has no integer id in [0, %d]", name, where,
                    ZI_TOK_MAX_ID);
    if (!cJSON_IsString(c) || !c->valuestring[0] || strlen(c->valuestring) > 1000 ||
        zt_utf8_check((const uint8_t *)c->valuestring, strlen(c->valuestring)) !=
            strlen(c->valuestring))
        return FAIL(PX_ECORRUPT, "%s: %s: id %d has no content (a non-empty UTF-8 string of at "
                    "most 1000 bytes)", name, where, id);
    bool sw;
    if (zt_opt_bool(o, "special", false, &a->special) ||
        zt_opt_bool(o, "lstrip", false, &a->lstrip) ||
        zt_opt_bool(o, "rstrip", false, &a->rstrip) || zt_opt_bool(o, "single_word", false, &sw) ||
        zt_opt_bool(o, "normalized", false, &sw))
        return FAIL(PX_ECORRUPT, "%s: %s: id %d: special/lstrip/rstrip/single_word/normalized "
                    "must be booleans", name, where, id);
    a->id = id;
    a->content = c->valuestring;
    return 0;
}

/* tokenizer.json's added_tokens array, or tokenizer_config.json's
 * added_tokens_decoder object keyed by id; *list is malloc'd. */
int zt_collect_added(const cJSON *src, bool keyed, zt_added_in **list, size_t *n, int32_t *max_id,
                     const char *name, char *err, size_t errlen)
{
    const char *where = keyed ? "added_tokens_decoder" : "added_tokens";
    *list = NULL;
    *n = 0;
    *max_id = -1;
    if (!src || cJSON_IsNull(src)) return 0;
    if (keyed ? !cJSON_IsObject(src) : !cJSON_IsArray(src))
        return FAIL(PX_ECORRUPT, "%s: %s is not an %s", name, where, keyed ? "object" : "array");
    size_t cnt = 0;
    for (const cJSON *e = src->child; e; e = e->next) cnt++;
    if (!cnt) return 0;
    *list = px_alloc_array(cnt, sizeof **list);
    if (!*list) return FAIL(PX_ENOMEM, "%s: out of memory", name);
    for (const cJSON *e = src->child; e; e = e->next) {
        int32_t id = -1;
        if (keyed) {
            char *end;
            errno = 0;
            long v = strtol(e->string, &end, 10);
            if (errno || *end || e->string[0] < '0' || e->string[0] > '9' || v > ZI_TOK_MAX_ID)
                return FAIL(PX_ECORRUPT, "%s: %s: key \"%.40s\" is not an id in [0, %d]", name,
                            where, e->string, ZI_TOK_MAX_ID);
            id = (int32_t)v;
        }
        int rc = parse_added(e, id, &(*list)[*n], name, where, err, errlen);
        if (rc) return rc;
        if ((*list)[*n].id > *max_id) *max_id = (*list)[*n].id;
        (*n)++;
    }
    return 0;
}

static int added_cmp(const void *pa, const void *pb, void *arg)
{
    const zt_added *a = pa, *b = pb;
    const uint8_t *ar = arg;
    if (ar[a->off] != ar[b->off]) return ar[a->off] < ar[b->off] ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1; /* longest first */
    return memcmp(ar + a->off, ar + b->off, a->len);
}

/* Enters the added tokens into the id table and the match index. */
int zt_install_added(zi_tok *t, const zt_added_in *in, size_t n, const char *name, char *err,
                     size_t errlen)
{
    if (!n) return 0;
    if (!(t->added = px_alloc_array(n, sizeof *t->added)))
        return FAIL(PX_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = (const uint8_t *)in[i].content;
        size_t len = strlen(in[i].content);
        int32_t id = in[i].id;
        zt_span *sp = &t->tok[id];
        if (t->flags[id] & ZT_ADDED)
            return FAIL(PX_ECORRUPT, "%s: added_tokens: id %d appears twice", name, id);
        if (t->flags[id] & ZT_VOCAB) {
            if (sp->len != len || memcmp(t->arena + sp->off, c, len))
                return FAIL(PX_ECORRUPT, "%s: added token %d \"%.40s\" is not the vocabulary's "
                            "token of that id", name, id, in[i].content);
        } else if (arena_add(t, c, len, &sp->off)) {
            return FAIL(PX_ENOMEM, "%s: out of memory", name);
        }
        sp->len = (uint32_t)len;
        t->flags[id] |= ZT_ADDED | (in[i].special ? ZT_SPECIAL : 0);
        t->added[i] = (zt_added){sp->off, sp->len, id, in[i].special, in[i].lstrip, in[i].rstrip};
    }
    t->nadded = n;
    qsort_r(t->added, n, sizeof *t->added, added_cmp, t->arena);
    for (size_t i = 1; i < n; i++)
        if (!added_cmp(&t->added[i - 1], &t->added[i], t->arena))
            return FAIL(PX_ECORRUPT, "%s: added tokens %d and %d have the same content", name,
                        t->added[i - 1].id, t->added[i].id);
    size_t i = 0;
    for (int b = 0; b < 256; b++) {
        t->abyte[b] = (uint32_t)i;
        while (i < n && t->arena[t->added[i].off] == b) i++;
    }
    t->abyte[256] = (uint32_t)n;
    return 0;
}

/* --- the pre-tokenizer regex, parse memory ----------------------------------------- */

static int compile_regex(zi_tok *t, const char *re, const char *name, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    t->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &off,
                          NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return FAIL(PX_ECORRUPT, "%s: pre_tokenizer regex does not compile at offset %zu: %s",
                    name, (size_t)off, (const char *)msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

/* cJSON spends a node per value: ~70 MB for the real 11 MB file, freed
 * right after loading, but glibc keeps the freed small blocks resident;
 * hand them back (the tables themselves are ~8 MB). */
void zt_release_parse_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* --- assembly ----------------------------------------------------------------------- */

static int32_t added_find(const zi_tok *t, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].len == len && !memcmp(t->arena + t->added[i].off, s, len))
            return t->added[i].id;
    return -1;
}

/* The tables every loader ends with: single-byte ids, template ids, unk. */
int zt_finish(zi_tok *t, const cJSON *unk, const char *regex, const char *name, char *err,
              size_t errlen)
{
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = zt_vocab_find(t, &c, 1);
    }
    t->im_start = added_find(t, "<|im_start|>");
    t->im_end = added_find(t, "<|im_end|>");
    t->unk = -1;
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsString(unk))
            return FAIL(PX_ECORRUPT, "%s: model.unk_token is not a string", name);
        t->unk = added_find(t, unk->valuestring);
        uint8_t buf[1024];
        size_t len;
        if (t->unk < 0 && !bytelevel_decode(unk->valuestring, buf, sizeof buf, &len))
            t->unk = zt_vocab_find(t, buf, len);
        if (t->unk < 0)
            return FAIL(PX_ECORRUPT, "%s: model.unk_token \"%.40s\" is not a token", name,
                        unk->valuestring);
    }
    return regex ? compile_regex(t, regex, name, err, errlen) : 0;
}

/* cJSON's own error pointer is a global: ask for the end position instead. */
int zt_parse_json(const char *json, size_t len, const char *name, cJSON **root, char *err,
                  size_t errlen)
{
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!*root)
        return FAIL(PX_ECORRUPT, "%s: not valid JSON (near byte %zu)", name,
                    (size_t)(end && end >= json && end <= json + len ? end - json : 0));
    return 0;
}

int zi_tok_load_vocab_merges(const char *vocab, size_t vlen, const char *merges, size_t mlen,
                             const char *config, size_t clen, const char *name, zi_tok **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    char vname[1024], mname[1024], cname[1024];
    snprintf(vname, sizeof vname, "%s/vocab.json", name);
    snprintf(mname, sizeof mname, "%s/merges.txt", name);
    snprintf(cname, sizeof cname, "%s/tokenizer_config.json", name);
    cJSON *vroot = NULL, *croot = NULL;
    zt_added_in *added = NULL;
    size_t nadded = 0;
    int32_t max_added = -1;
    zi_tok *t = px_xcalloc(1, sizeof *t);
    t->nfc = true;
    int rc = zt_parse_json(vocab, vlen, vname, &vroot, err, errlen);
    if (!rc && config) rc = zt_parse_json(config, clen, cname, &croot, err, errlen);
    if (!rc && croot && !cJSON_IsObject(croot))
        rc = FAIL(PX_ECORRUPT, "%s: not a JSON object", cname);
    if (!rc && croot)
        rc = zt_collect_added(cJSON_GetObjectItemCaseSensitive(croot, "added_tokens_decoder"), true,
                              &added, &nadded, &max_added, cname, err, errlen);
    if (!rc) rc = zt_load_vocab(t, vroot, vname, "vocab", max_added, err, errlen);
    if (!rc) rc = load_merges_txt(t, merges, mlen, mname, err, errlen);
    if (!rc) rc = zt_install_added(t, added, nadded, cname, err, errlen);
    if (!rc) rc = zt_finish(t, NULL, QWEN_REGEX, name, err, errlen);
    free(added);
    cJSON_Delete(vroot);
    cJSON_Delete(croot);
    zt_release_parse_memory();
    if (rc) {
        zi_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void zi_tok_free(zi_tok *t)
{
    if (!t) return;
    pcre2_code_free(t->re);
    free(t->arena);
    free(t->tok);
    free(t->flags);
    free(t->vhash);
    free(t->mtab);
    free(t->added);
    free(t);
}

/* --- files -------------------------------------------------------------------------- */

/* Reads a whole file (NUL-terminated copy); *data NULL and 0 if absent and
 * optional. */
static int read_file(const char *path, bool optional, char **data, size_t *len, char *err,
                     size_t errlen)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT) return 0;
        return FAIL(PX_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return FAIL(PX_EIO, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > MAX_FILE) {
        fclose(f);
        return FAIL(PX_ETOOBIG, "%s is %lld bytes, above the %zu-byte limit", path,
                    (long long)st.st_size, MAX_FILE);
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        return FAIL(PX_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, f);
    bool bad = ferror(f) || got != n;
    fclose(f);
    if (bad) {
        free(b);
        return FAIL(PX_EIO, "cannot read %s", path);
    }
    b[n] = 0;
    *data = b;
    *len = n;
    return 0;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static bool exists(const char *p)
{
    struct stat st;
    return !stat(p, &st);
}

int zi_tok_load(const char *path, zi_tok **out, char *err, size_t errlen)
{
    *out = NULL;
    char p[4096], q[4096], c[4096];
    if (strlen(path) > 3000) return FAIL(PX_EINVAL, "tokenizer path is too long");
    char *data = NULL, *merges = NULL, *config = NULL;
    size_t len, mlen, clen;
    int rc;
    if (!is_dir(path)) {
        if ((rc = read_file(path, false, &data, &len, err, errlen))) return rc;
        rc = zi_tok_load_json(data, len, path, out, err, errlen);
        free(data);
        return rc;
    }
    snprintf(p, sizeof p, "%s/tokenizer", path);
    if (is_dir(p)) return zi_tok_load(p, out, err, errlen); /* a model directory */
    snprintf(p, sizeof p, "%s/tokenizer.json", path);
    if (exists(p)) return zi_tok_load(p, out, err, errlen);
    snprintf(p, sizeof p, "%s/vocab.json", path);
    snprintf(q, sizeof q, "%s/merges.txt", path);
    snprintf(c, sizeof c, "%s/tokenizer_config.json", path);
    if (!exists(p) || !exists(q))
        return FAIL(PX_ENOTFOUND, "%s holds neither tokenizer.json nor vocab.json + merges.txt",
                    path);
    if (!(rc = read_file(p, false, &data, &len, err, errlen)) &&
        !(rc = read_file(q, false, &merges, &mlen, err, errlen)) &&
        !(rc = read_file(c, true, &config, &clen, err, errlen)))
        rc = zi_tok_load_vocab_merges(data, len, merges, mlen, config, clen, path, out, err,
                                      errlen);
    free(data);
    free(merges);
    free(config);
    return rc;
}
