/*
 * tokenizer_json.c — the tokenizer.json reader (tokenizer_impl.h): model.vocab,
 * model.merges as "a b" strings or [a, b] pairs, added_tokens, normalizer,
 * pre_tokenizer and the BPE model's options, into the tables through the
 * builders of tokenizer_load.c.
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
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's pre-tokenizer: what ByteLevel with use_regex means. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

#define FAIL(code, ...) px_errf(err, errlen, (code), __VA_ARGS__)

/* model.merges: ["a b", ...] or [["a", "b"], ...]. */
static int load_merges_json(zi_tok *t, const cJSON *merges, const char *name, char *err,
                            size_t errlen)
{
    if (!cJSON_IsArray(merges)) return FAIL(PX_ECORRUPT, "%s: model.merges is not an array", name);
    int n = cJSON_GetArraySize(merges), rc;
    if ((rc = zt_merges_alloc(t, (size_t)n, name, err, errlen))) return rc;
    char pair[2][1024];
    int32_t rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *a, *b;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            size_t la = sp ? (size_t)(sp - s) : 0;
            if (!sp || strchr(sp + 1, ' ') || !la || !sp[1] || la >= sizeof pair[0])
                return FAIL(PX_ECORRUPT, "%s: merge %d \"%.40s\" is not two tokens joined by one "
                            "space", name, rank, s);
            memcpy(pair[0], s, la);
            pair[0][la] = 0;
            a = pair[0];
            b = sp + 1;
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                   cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            a = m->child->valuestring;
            b = m->child->next->valuestring;
        } else {
            return FAIL(PX_ECORRUPT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", name,
                        rank);
        }
        if ((rc = zt_add_merge(t, a, b, rank, name, err, errlen))) return rc;
    }
    return 0;
}

static const char *type_of(const cJSON *o)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static int parse_normalizer(zi_tok *t, const cJSON *n, const char *name, char *err, size_t errlen)
{
    if (!n || cJSON_IsNull(n)) return 0;
    const char *ty = type_of(n);
    if (ty && !strcmp(ty, "NFC")) {
        t->nfc = true;
        return 0;
    }
    if (ty && !strcmp(ty, "Sequence")) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(l)) return FAIL(PX_ECORRUPT, "%s: normalizer: no list", name);
        for (const cJSON *e = l->child; e; e = e->next) {
            int rc = parse_normalizer(t, e, name, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    return FAIL(PX_EUNSUP, "%s: normalizer \"%.40s\" is not supported (only NFC)", name,
                ty ? ty : "(no type)");
}

/* Finds the one regex of the pre-tokenizer (*re stays NULL if none). */
static int parse_pretok(const cJSON *p, const char **re, const char *name, char *err,
                        size_t errlen)
{
    if (!p || cJSON_IsNull(p)) return 0;
    const char *ty = type_of(p), *found = NULL;
    if (ty && !strcmp(ty, "Sequence")) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(l)) return FAIL(PX_ECORRUPT, "%s: pre_tokenizer: no list", name);
        for (const cJSON *e = l->child; e; e = e->next) {
            int rc = parse_pretok(e, re, name, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    bool b;
    if (ty && !strcmp(ty, "ByteLevel")) {
        if (zt_opt_bool(p, "add_prefix_space", false, &b) || b)
            return FAIL(PX_EUNSUP, "%s: pre_tokenizer ByteLevel with add_prefix_space is not "
                        "supported", name);
        if (zt_opt_bool(p, "use_regex", true, &b))
            return FAIL(PX_ECORRUPT, "%s: pre_tokenizer: use_regex is not a boolean", name);
        found = b ? GPT2_REGEX : NULL;
    } else if (ty && !strcmp(ty, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        if (!cJSON_IsString(rx))
            return FAIL(PX_EUNSUP, "%s: pre_tokenizer Split without a Regex pattern is not "
                        "supported", name);
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") ||
            zt_opt_bool(p, "invert", false, &b) || b)
            return FAIL(PX_EUNSUP, "%s: pre_tokenizer Split is only supported with behavior "
                        "Isolated and invert false", name);
        found = rx->valuestring;
    } else {
        return FAIL(PX_EUNSUP, "%s: pre_tokenizer \"%.40s\" is not supported", name,
                    ty ? ty : "(no type)");
    }
    if (found && *re)
        return FAIL(PX_EUNSUP, "%s: pre_tokenizer with two regex splits is not supported", name);
    if (found) *re = found;
    return 0;
}

/* model.{type, dropout, byte_fallback, continuing_subword_prefix,
 * end_of_word_suffix, fuse_unk, ignore_merges}; unk_token is resolved later. */
static int parse_model_opts(zi_tok *t, const cJSON *m, const char *name, char *err,
                            size_t errlen)
{
    const char *ty = type_of(m);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    bool fb;
    if (cJSON_GetObjectItemCaseSensitive(m, "type") && (!ty || strcmp(ty, "BPE")))
        return FAIL(PX_EUNSUP, "%s: model type \"%.40s\" is not supported (only BPE)", name,
                    ty ? ty : "(not a string)");
    if (d && !cJSON_IsNull(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0))
        return FAIL(PX_EUNSUP, "%s: BPE dropout is not supported", name);
    if (zt_opt_bool(m, "byte_fallback", false, &fb) || fb)
        return FAIL(PX_EUNSUP, "%s: byte_fallback is not supported", name);
    if (zt_opt_bool(m, "fuse_unk", false, &t->fuse_unk) ||
        zt_opt_bool(m, "ignore_merges", false, &t->ignore_merges))
        return FAIL(PX_ECORRUPT, "%s: fuse_unk and ignore_merges must be booleans", name);
    static const char *const affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, affix[i]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && !a->valuestring[0]))
            return FAIL(PX_EUNSUP, "%s: %s is not supported", name, affix[i]);
    }
    return 0;
}

static int tokenizer_json(zi_tok *t, const cJSON *root, const char *name, char *err,
                          size_t errlen)
{
    if (!cJSON_IsObject(root)) return FAIL(PX_ECORRUPT, "%s: not a JSON object", name);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return FAIL(PX_ECORRUPT, "%s: no \"model\" object", name);
    const char *regex = NULL;
    zt_added_in *added = NULL;
    size_t nadded;
    int32_t max_added;
    int rc;
    if ((rc = parse_model_opts(t, model, name, err, errlen)) ||
        (rc = parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), name, err,
                               errlen)) ||
        (rc = parse_pretok(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &regex, name,
                           err, errlen)) ||
        (rc = zt_collect_added(cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), false,
                               &added, &nadded, &max_added, name, err, errlen)) ||
        (rc = zt_load_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), name,
                            "model.vocab", max_added, err, errlen)) ||
        (rc = load_merges_json(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), name, err,
                               errlen)) ||
        (rc = zt_install_added(t, added, nadded, name, err, errlen)) ||
        (rc = zt_finish(t, cJSON_GetObjectItemCaseSensitive(model, "unk_token"), regex, name, err,
                        errlen))) {
        free(added);
        return rc;
    }
    free(added);
    return 0;
}

int zi_tok_load_json(const char *json, size_t len, const char *name, zi_tok **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    cJSON *root;
    int rc = zt_parse_json(json, len, name, &root, err, errlen);
    if (rc) return rc;
    zi_tok *t = px_xcalloc(1, sizeof *t);
    rc = tokenizer_json(t, root, name, err, errlen);
    cJSON_Delete(root);
    zt_release_parse_memory();
    if (rc) {
        zi_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
