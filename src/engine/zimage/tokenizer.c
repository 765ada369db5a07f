/*
 * tokenizer.c — encoding and decoding with the tables tokenizer_load.c
 * built: added tokens split the text first (longest match at the leftmost
 * position, as Hugging Face's tokenizers does), each section between them is
 * NFC-normalised and cut into words by the pre-tokenizer regex (PCRE2, UTF +
 * Unicode properties, JIT when available), and each word's bytes are merged
 * by BPE: a min-heap of adjacent pairs ordered by (merge rank, position), so
 * a word of n bytes costs O(n log n) whatever its length.
 */
#include "engine/zimage/tokenizer_impl.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define FAIL(code, ...) px_errf(err, errlen, (code), __VA_ARGS__)

#define MAX_TEXT ((size_t)1 << 30)

size_t zt_utf8_check(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t min, cp;
        if (c >= 0xC2 && c <= 0xDF) n = 1, min = 0x80, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, min = 0x800, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, min = 0x10000, cp = c & 0x07;
        else return i;
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n + 1;
    }
    return len;
}

/* --- output ------------------------------------------------------------------------- */

/* Ids appended up to `limit`; `more` says tokens beyond it were left out. */
typedef struct zt_ids {
    int32_t *v;
    size_t n, cap;
    size_t limit;
    bool more;
} zt_ids;

/* Appends one id; 1 when the limit is reached (the id is left out). */
static int ids_push(zt_ids *o, int32_t id)
{
    if (o->n >= o->limit) {
        o->more = true;
        return 1;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *v = px_alloc_array(cap, sizeof *v);
        if (!v) return PX_ENOMEM;
        if (o->n) memcpy(v, o->v, o->n * sizeof *v);
        free(o->v);
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
    return 0;
}

/* --- BPE ---------------------------------------------------------------------------- */

typedef struct heap_ent {
    int32_t rank, pos, left, right, merged; /* pair (left, right) ids starting at pos */
} heap_ent;

/* Per-call scratch, grown to the longest word seen. */
typedef struct bpe_scratch {
    int32_t *id, *next, *prev;
    heap_ent *heap;
    size_t cap, nheap;
} bpe_scratch;

static void scratch_free(bpe_scratch *s)
{
    free(s->id);
    free(s->next);
    free(s->prev);
    free(s->heap);
}

static int scratch_reserve(bpe_scratch *s, size_t n)
{
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    scratch_free(s);
    s->id = px_alloc_array(cap, sizeof *s->id);
    s->next = px_alloc_array(cap, sizeof *s->next);
    s->prev = px_alloc_array(cap, sizeof *s->prev);
    s->heap = px_alloc_array(cap, 2 * sizeof *s->heap);
    s->cap = s->id && s->next && s->prev && s->heap ? cap : 0;
    return s->cap ? 0 : PX_ENOMEM;
}

static bool ent_less(const heap_ent *a, const heap_ent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

/* Pushes the pair starting at pos if it has a merge. A word of n symbols
 * starts with at most n-1 entries and each merge pops one and pushes at
 * most two, so the heap never holds more than 2n-2 (room for 2n). */
static void heap_push(const zi_tok *t, bpe_scratch *s, int32_t pos)
{
    int32_t nx = s->next[pos];
    if (nx < 0) return;
    const zt_merge *m = zt_merge_find(t, s->id[pos], s->id[nx]);
    if (!m) return;
    size_t i = s->nheap++;
    heap_ent e = {m->rank, pos, s->id[pos], s->id[nx], m->id};
    while (i > 0 && ent_less(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static heap_ent heap_pop(bpe_scratch *s)
{
    heap_ent top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0, n = s->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ent_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!ent_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* BPE of one word's bytes, appending ids. Bytes the vocabulary lacks become
 * the unk token (fused when fuse_unk) or are dropped, as in Hugging Face's
 * BPE model without byte fallback. */
static int bpe_word(const zi_tok *t, bpe_scratch *s, const uint8_t *w, size_t len, zt_ids *out)
{
    if (t->ignore_merges) {
        int32_t whole = zt_vocab_find(t, w, len);
        if (whole >= 0) return ids_push(out, whole);
    }
    int rc;
    if ((rc = scratch_reserve(s, len))) return rc;
    int32_t n = 0;
    bool last_unk = false;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) {
            if (t->unk < 0 || (t->fuse_unk && last_unk)) continue;
            id = t->unk;
        }
        last_unk = id == t->unk && t->byte_id[w[i]] < 0;
        s->id[n] = id;
        s->prev[n] = n - 1;
        s->next[n] = n + 1;
        n++;
    }
    if (!n) return 0;
    s->next[n - 1] = -1;
    s->nheap = 0;
    for (int32_t i = 0; i + 1 < n; i++) heap_push(t, s, i);
    while (s->nheap) {
        heap_ent e = heap_pop(s);
        int32_t nx = s->next[e.pos];
        /* Stale entries: either side merged since (ids only grow longer). */
        if (s->id[e.pos] != e.left || nx < 0 || s->id[nx] != e.right) continue;
        s->id[e.pos] = e.merged;
        s->id[nx] = -1;
        s->next[e.pos] = s->next[nx];
        if (s->next[nx] >= 0) s->prev[s->next[nx]] = e.pos;
        if (s->prev[e.pos] >= 0) heap_push(t, s, s->prev[e.pos]);
        heap_push(t, s, e.pos);
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if ((rc = ids_push(out, s->id[i]))) return rc;
    return 0;
}

/* --- sections ----------------------------------------------------------------------- */

/* One section between added tokens: NFC, regex words, BPE. */
static int encode_section(const zi_tok *t, const uint8_t *txt, size_t len, bpe_scratch *s,
                          pcre2_match_data *md, zt_ids *out, char *err, size_t errlen)
{
    if (!len) return 0;
    uint8_t *norm = NULL;
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++) ascii = txt[i] < 0x80;
    if (t->nfc && !ascii) { /* ASCII is always NFC: skip the copy */
        utf8proc_ssize_t r = utf8proc_map(txt, (utf8proc_ssize_t)len, &norm,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) return FAIL(PX_EINVAL, "NFC normalisation failed: %s", utf8proc_errmsg(r));
        txt = norm;
        len = (size_t)r;
    }
    int rc = 0;
    if (!t->re) {
        rc = bpe_word(t, s, txt, len, out);
        free(norm);
        return rc;
    }
    size_t at = 0, prev = 0;
    while (!rc && at < len) {
        int m = pcre2_match(t->re, txt, len, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = FAIL(PX_EINVAL, "pre-tokenizer regex failed: %s", (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        /* "Isolated": text the regex skipped is a word of its own. */
        if (b > prev) rc = bpe_word(t, s, txt + prev, b - prev, out);
        if (!rc && e > b) rc = bpe_word(t, s, txt + b, e - b, out);
        if (e == b) { /* an empty match splits there; step over one character */
            e++;
            while (e < len && (txt[e] & 0xC0) == 0x80) e++;
            prev = b;
            at = e;
            continue;
        }
        at = prev = e;
    }
    if (!rc && prev < len) rc = bpe_word(t, s, txt + prev, len - prev, out);
    free(norm);
    return rc;
}

/* The added token that starts at s[i] (the longest one), or NULL. */
static const zt_added *added_at(const zi_tok *t, const uint8_t *s, size_t len, size_t i)
{
    if (!t->nadded) return NULL;
    for (uint32_t k = t->abyte[s[i]]; k < t->abyte[s[i] + 1]; k++) {
        const zt_added *a = &t->added[k];
        if (a->len <= len - i && !memcmp(t->arena + a->off, s + i, a->len)) return a;
    }
    return NULL;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Encodes text appending at most out->limit ids (returns 0 when it stops
 * there, with out->more set). `checked`: text is known to be valid UTF-8. */
static int zt_encode(const zi_tok *t, const char *text, size_t len, bool checked, zt_ids *out,
                     char *err, size_t errlen)
{
    const uint8_t *s = (const uint8_t *)text;
    if (len > MAX_TEXT) /* positions are int32 in the BPE scratch */
        return FAIL(PX_ETOOBIG, "text of %zu bytes is above the %zu-byte limit", len, MAX_TEXT);
    size_t bad = checked ? len : zt_utf8_check(s, len);
    if (bad != len) return FAIL(PX_EINVAL, "text is not valid UTF-8 (byte offset %zu)", bad);
    pcre2_match_data *md = NULL;
    if (t->re && !(md = pcre2_match_data_create_from_pattern(t->re, NULL)))
        return FAIL(PX_ENOMEM, "out of memory");
    bpe_scratch sc = {0};
    size_t sec = 0, i = 0;
    int rc = 0;
    while (!rc && i < len) {
        if (t->abyte[s[i]] == t->abyte[s[i] + 1]) { /* no added token starts with it */
            i++;
            continue;
        }
        const zt_added *a = added_at(t, s, len, i);
        if (!a) {
            i++;
            continue;
        }
        /* lstrip/rstrip: the token swallows the (ASCII) spaces beside it. */
        size_t end = i;
        if (a->lstrip)
            while (end > sec && is_space(s[end - 1])) end--;
        rc = encode_section(t, s + sec, end - sec, &sc, md, out, err, errlen);
        if (!rc) rc = ids_push(out, a->id);
        i += a->len;
        if (a->rstrip)
            while (i < len && is_space(s[i])) i++;
        sec = i;
    }
    if (!rc) rc = encode_section(t, s + sec, len - sec, &sc, md, out, err, errlen);
    scratch_free(&sc);
    pcre2_match_data_free(md);
    if (rc == PX_ENOMEM) FAIL(PX_ENOMEM, "out of memory");
    return rc < 0 ? rc : 0; /* 1 = stopped at the limit */
}

int zi_tok_encode(const zi_tok *t, const char *text, size_t len, int32_t **ids, size_t *n,
                  char *err, size_t errlen)
{
    zt_ids o = {.limit = SIZE_MAX};
    *ids = NULL;
    *n = 0;
    int rc = zt_encode(t, text, len, false, &o, err, errlen);
    if (!rc && !o.v && !(o.v = malloc(sizeof *o.v))) rc = FAIL(PX_ENOMEM, "out of memory");
    if (rc) {
        free(o.v);
        return rc;
    }
    *ids = o.v;
    *n = o.n;
    return 0;
}

/* The template around the prompt; the suffix starts with a special token, so
 * its ids do not depend on the prompt, while "user\n" and the prompt's first
 * characters go through the regex together (a prompt starting with newlines
 * merges them with the template's). */
static const char TPL_HEAD[] = "<|im_start|>user\n";
static const char TPL_TAIL[] = "<|im_end|>\n<|im_start|>assistant\n";

int zi_tok_encode_prompt(const zi_tok *t, const char *prompt, int32_t *ids, size_t cap,
                         size_t *n, bool *truncated, char *err, size_t errlen)
{
    *n = 0;
    *truncated = false;
    if (t->im_start < 0 || t->im_end < 0)
        return FAIL(PX_EINVAL, "the tokenizer has no <|im_start|>/<|im_end|> tokens: it is not "
                    "a Qwen chat tokenizer");
    int32_t tail[16];
    zt_ids tl = {.v = tail, .cap = 16, .limit = 16};
    int rc = zt_encode(t, TPL_TAIL, strlen(TPL_TAIL), true, &tl, err, errlen);
    if (rc) return rc;
    if (tl.more || cap < tl.n + 4)
        return FAIL(PX_EINVAL, "a cap of %zu tokens cannot hold the chat template and a prompt",
                    cap);
    size_t plen = strlen(prompt), hlen = sizeof TPL_HEAD - 1;
    size_t bad = zt_utf8_check((const uint8_t *)prompt, plen);
    if (bad != plen) return FAIL(PX_EINVAL, "prompt is not valid UTF-8 (byte offset %zu)", bad);
    char *head = malloc(hlen + plen + 1);
    if (!head) return FAIL(PX_ENOMEM, "out of memory");
    memcpy(head, TPL_HEAD, hlen);
    memcpy(head + hlen, prompt, plen + 1);
    /* Into the caller's array directly: limit == cap, so it never grows. */
    zt_ids hd = {.v = ids, .cap = cap - tl.n, .limit = cap - tl.n};
    rc = zt_encode(t, head, hlen + plen, true, &hd, err, errlen);
    free(head);
    if (rc) return rc;
    memcpy(ids + hd.n, tail, tl.n * sizeof *tail);
    *n = hd.n + tl.n;
    *truncated = hd.more;
    return 0;
}

int zi_tok_decode(const zi_tok *t, const int32_t *ids, size_t n, bool skip_special, char **text,
                  size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->nids || !t->tok[ids[i]].len)
            return FAIL(PX_EINVAL, "id %d (at %zu) is not in the vocabulary", ids[i], i);
        total += t->tok[ids[i]].len;
    }
    char *o = malloc(total + 1);
    if (!o) return FAIL(PX_ENOMEM, "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && (t->flags[ids[i]] & ZT_SPECIAL)) continue;
        memcpy(o + at, t->arena + t->tok[ids[i]].off, t->tok[ids[i]].len);
        at += t->tok[ids[i]].len;
    }
    o[at] = 0;
    *text = o;
    *len = at;
    return 0;
}

int32_t zi_tok_id(const zi_tok *t, const char *text, size_t len)
{
    const uint8_t *s = (const uint8_t *)text;
    if (!len) return -1;
    const zt_added *a = added_at(t, s, len, 0);
    if (a && a->len == len) return a->id;
    return zt_vocab_find(t, s, len);
}

int32_t zi_tok_vocab_size(const zi_tok *t)
{
    return t->nids;
}

bool zi_tok_jit(const zi_tok *t)
{
    return t->jit;
}
