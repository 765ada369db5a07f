/*
 * zimage_tokenizer_tiny_test.c — the Z-Image (Qwen3) tokenizer on tiny
 * hand-written tokenizers, where every expected id can be worked out by
 * hand: merge order and ties, both merge forms, added tokens and their
 * stripping, the regex split, vocab.json + merges.txt and directory
 * layouts, the 512-token cap, unknown bytes, invalid UTF-8, a naive BPE
 * on random vocabularies, and the loader's error messages.
 */
#include "core/err.h"
#include "engine/zimage/tokenizer.h"
#include "harness.h"
#include "zimage_tokenizer_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- tiny hand-written tokenizers --------------------------------------------------- */

/* Qwen's pre-tokenizer regex as a JSON string. */
#define QWEN_RX_JSON                                                                          \
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|"         \
    " ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\""

/* A tokenizer.json with the letters a-z (ids 0-25), "Ġ" (space, 26) and "Ċ"
 * (newline, 27), then extra vocab entries, merges, added tokens and extra
 * model members. */
static char *tiny_json(const char *vocab, const char *merges, const char *added,
                       const char *model_extra)
{
    size_t cap = 1 << 16, at = 0;
    char *b = malloc(cap);
    at += (size_t)snprintf(b + at, cap - at,
                           "{\"version\":\"1.0\",\"added_tokens\":[%s],"
                           "\"normalizer\":{\"type\":\"NFC\"},"
                           "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
                           "{\"type\":\"Split\",\"pattern\":{\"Regex\":" QWEN_RX_JSON "},"
                           "\"behavior\":\"Isolated\",\"invert\":false},"
                           "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":"
                           "false,\"use_regex\":false}]},"
                           "\"decoder\":{\"type\":\"ByteLevel\"},"
                           "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,%s"
                           "\"vocab\":{",
                           added, model_extra);
    for (int i = 0; i < 26; i++) at += (size_t)snprintf(b + at, cap - at, "\"%c\":%d,", 'a' + i, i);
    snprintf(b + at, cap - at, "\"\\u0120\":26,\"\\u010a\":27%s%s},\"merges\":[%s]}}",
             vocab[0] ? "," : "", vocab, merges);
    return b;
}

static zi_tok *tiny(const char *vocab, const char *merges, const char *added, const char *extra)
{
    char *j = tiny_json(vocab, merges, added, extra), err[512];
    zi_tok *t;
    if (zi_tok_load_json(j, strlen(j), "tiny.json", &t, err, sizeof err))
        px_tfail(PX_TLOC_, "tiny tokenizer: %s", err);
    free(j);
    return t;
}

/* Encodes and compares with the expected ids (terminated by -1). */
#define T_ENCODES(t, text, ...)                                                              \
    do {                                                                                     \
        static const int32_t want_[] = {__VA_ARGS__, -1};                                    \
        int32_t *ids_;                                                                       \
        size_t n_, nw_ = 0;                                                                  \
        char err_[256];                                                                      \
        if (zi_tok_encode((t), (text), strlen(text), &ids_, &n_, err_, sizeof err_))         \
            px_tfail(PX_TLOC_, "encode \"%s\": %s", (text), err_);                           \
        while (want_[nw_] >= 0) nw_++;                                                       \
        if (n_ != nw_ || memcmp(ids_, want_, n_ * sizeof *ids_)) {                           \
            char got_[512] = "";                                                             \
            for (size_t i_ = 0; i_ < n_ && strlen(got_) < 480; i_++)                         \
                snprintf(got_ + strlen(got_), sizeof got_ - strlen(got_), " %d", ids_[i_]);  \
            px_tfail(PX_TLOC_, "encode \"%s\": got%s", (text), got_);                        \
        }                                                                                    \
        free(ids_);                                                                          \
    } while (0)

#define A 0
#define B 1
#define C 2
#define SP 26
#define NL 27

TEST(t_merge_rank_order)
{
    /* b+c before a+b: "abc" = a, bc. */
    zi_tok *t = tiny("\"bc\":28,\"ab\":29", "\"b c\",\"a b\"", "", "");
    T_ENCODES(t, "abc", A, 28);
    T_ENCODES(t, "ab", 29);
    zi_tok_free(t);
    /* a+b first: ab, c; and a lower-ranked merge finishes the word. */
    t = tiny("\"bc\":28,\"ab\":29", "\"a b\",\"b c\"", "", "");
    T_ENCODES(t, "abc", 29, C);
    zi_tok_free(t);
    t = tiny("\"bc\":28,\"ab\":29,\"abc\":30", "\"a b\",\"b c\",\"ab c\"", "", "");
    T_ENCODES(t, "abc", 30);
    T_ENCODES(t, "abcabc", 30, 30); /* one word: the letters run on */
    T_ENCODES(t, "abc abc", 30, SP, 30); /* " abc": Ġ never merges here */
    zi_tok_free(t);
}

TEST(t_merge_ties_leftmost)
{
    zi_tok *t = tiny("\"aa\":28,\"aaaa\":29", "\"a a\",\"aa aa\"", "", "");
    T_ENCODES(t, "aaa", 28, A);
    T_ENCODES(t, "aaaa", 29);
    T_ENCODES(t, "aaaaa", 29, A);
    T_ENCODES(t, "aaaaaa", 29, 28);
    zi_tok_free(t);
}

TEST(t_merge_array_form)
{
    zi_tok *t = tiny("\"bc\":28,\"ab\":29", "[\"b\",\"c\"],[\"a\",\"b\"]", "", "");
    T_ENCODES(t, "abc", A, 28);
    zi_tok_free(t);
    /* A space in a pair is only expressible in the array form: "Ġ" is the
     * byte-level space, so this is the pair ("Ġ", "a"). */
    t = tiny("\"\\u0120a\":28", "[\"\\u0120\",\"a\"]", "", "");
    T_ENCODES(t, "a a", A, 28);
    zi_tok_free(t);
}

TEST(t_regex_split)
{
    zi_tok *t = tiny("\"\\u0120a\":28,\"\\u010a\\u010a\":29", "\"\\u0120 a\",\"\\u010a \\u010a\"",
                     "", "");
    T_ENCODES(t, " a a", 28, 28);
    T_ENCODES(t, "a  a", A, SP, 28);    /* \s+(?!\S) leaves the last space to the word */
    T_ENCODES(t, "a\n\nb", A, 29, B);   /* newlines are their own piece */
    T_ENCODES(t, "it's", 8, 19, 18);    /* 's split off: i t | ' s, and ' is not in vocab */
    T_ENCODES(t, "a1b", A, B);          /* bytes the vocab lacks are dropped */
    zi_tok_free(t);
}

TEST(t_unknown_token)
{
    zi_tok *t = tiny("\"<unk>\":28", "", "", "\"fuse_unk\":false,");
    T_ENCODES(t, "a1b", A, B); /* unk_token null in tiny_json: still dropped */
    zi_tok_free(t);
    char *j = tiny_json("\"<unk>\":28", "", "", "\"fuse_unk\":true,");
    char *u = strstr(j, "\"unk_token\":null");
    memmove(u + 19, u + 16, strlen(u + 16) + 1);
    memcpy(u, "\"unk_token\":\"<unk>\"", 19);
    char err[256];
    T_EQ_INT(zi_tok_load_json(j, strlen(j), "unk.json", &t, err, sizeof err), 0);
    T_ENCODES(t, "a12b", A, 28, 28, B); /* digits are pieces of their own */
    T_ENCODES(t, "a\xc3\xa9", A, 28);   /* é: two unknown bytes fused, one word with a */
    free(j);
    zi_tok_free(t);
}

#define ADDED                                                                                \
    "{\"id\":40,\"content\":\"<|im_start|>\",\"special\":true},"                            \
    "{\"id\":41,\"content\":\"<|im_end|>\",\"special\":true},"                              \
    "{\"id\":42,\"content\":\"<x>\",\"special\":false,\"lstrip\":false,\"rstrip\":false},"  \
    "{\"id\":43,\"content\":\"<x>y\",\"special\":false}"

TEST(t_added_tokens)
{
    zi_tok *t = tiny("", "", ADDED, "");
    T_EQ_INT(zi_tok_vocab_size(t), 44);
    T_ENCODES(t, "a<x>yb<x>", A, 43, B, 42); /* the longest added token wins */
    T_ENCODES(t, "ab<|im_end|>c", A, B, 41, C);
    T_ENCODES(t, "<|im_end|<|im_end|>", 8, 12, 4, 13, 3, 41); /* "<|", "_", "|" unknown: dropped */
    T_EQ_INT(zi_tok_id(t, "<x>", 3), 42);
    T_EQ_INT(zi_tok_id(t, "<x>y", 4), 43);
    T_EQ_INT(zi_tok_id(t, " ", 1), SP);
    T_EQ_INT(zi_tok_id(t, "<x", 2), -1);
    int32_t ids[] = {40, 0, 42, 27, 41};
    char *s, err[256];
    size_t len;
    T_EQ_INT(zi_tok_decode(t, ids, 5, false, &s, &len, err, sizeof err), 0);
    T_EQ_STR(s, "<|im_start|>a<x>\n<|im_end|>");
    free(s);
    T_EQ_INT(zi_tok_decode(t, ids, 5, true, &s, &len, err, sizeof err), 0);
    T_EQ_STR(s, "a<x>\n"); /* <x> is not special */
    free(s);
    int32_t badid[] = {0, 30};
    T_EQ_INT(zi_tok_decode(t, badid, 2, false, &s, &len, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "id 30 (at 1) is not in the vocabulary");
    zi_tok_free(t);
}

TEST(t_added_strip)
{
    zi_tok *t = tiny("", "", "{\"id\":40,\"content\":\"<m>\",\"lstrip\":true,\"rstrip\":true}", "");
    T_ENCODES(t, "a  <m>  b", A, 40, B);
    zi_tok_free(t);
}

/* The template's closing ids in the tiny tokenizer: <|im_end|> \n
 * <|im_start|> a s s i s t a n t \n. */
static const int32_t TINY_TAIL[] = {41, NL, 40, 0, 18, 18, 8, 18, 19, 0, 13, 19, NL};
#define NTAIL 13

TEST(t_prompt_cap)
{
    zi_tok *t = tiny("", "", ADDED, "");
    int32_t ids[600];
    size_t n;
    bool tr;
    char err[256];
    /* head: <|im_start|> u s e r \n = 6 tokens, then one per letter. */
    T_EQ_INT(zi_tok_encode_prompt(t, "ab", ids, 600, &n, &tr, err, sizeof err), 0);
    T_EQ_INT(n, 6 + 2 + NTAIL);
    T_TRUE(!tr);
    T_EQ_INT(ids[0], 40);
    T_EQ_INT(ids[5], NL);
    T_EQ_INT(ids[6], A);
    T_EQ_MEM(ids + 8, TINY_TAIL, sizeof TINY_TAIL);
    /* Exactly full, then one over. */
    char p[1200];
    memset(p, 'c', 1000);
    p[1000] = 0;
    size_t fit = 600 - 6 - NTAIL;
    p[fit] = 0;
    T_EQ_INT(zi_tok_encode_prompt(t, p, ids, 600, &n, &tr, err, sizeof err), 0);
    T_EQ_INT(n, 600);
    T_TRUE(!tr);
    p[fit] = 'c';
    p[fit + 1] = 0;
    T_EQ_INT(zi_tok_encode_prompt(t, p, ids, 600, &n, &tr, err, sizeof err), 0);
    T_EQ_INT(n, 600);
    T_TRUE(tr);
    T_EQ_INT(ids[600 - NTAIL - 1], C);
    T_EQ_MEM(ids + 600 - NTAIL, TINY_TAIL, sizeof TINY_TAIL);
    /* A cap too small for the template. */
    T_EQ_INT(zi_tok_encode_prompt(t, "a", ids, NTAIL + 3, &n, &tr, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "cannot hold the chat template");
    T_EQ_INT(zi_tok_encode_prompt(t, "a", ids, NTAIL + 4, &n, &tr, err, sizeof err), 0);
    zi_tok_free(t);
    /* No chat tokens at all. */
    t = tiny("", "", "", "");
    T_EQ_INT(zi_tok_encode_prompt(t, "a", ids, 600, &n, &tr, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "not a Qwen chat tokenizer");
    zi_tok_free(t);
}

TEST(t_invalid_utf8)
{
    zi_tok *t = tiny("", "", ADDED, "");
    static const char *bad[] = {"a\xff", "a\xc0\x80", "a\xed\xa0\x80", "a\xe4\xb8",
                                "a\xf4\x90\x80\x80", "a\x80"};
    int32_t *ids, fixed[64];
    size_t n;
    bool tr;
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        T_EQ_INT(zi_tok_encode(t, bad[i], strlen(bad[i]), &ids, &n, err, sizeof err), PX_EINVAL);
        T_CONTAINS(err, "not valid UTF-8 (byte offset 1)");
        T_EQ_INT(zi_tok_encode_prompt(t, bad[i], fixed, 64, &n, &tr, err, sizeof err), PX_EINVAL);
        T_CONTAINS(err, "prompt is not valid UTF-8 (byte offset 1)");
    }
    /* A NUL inside an explicit length is a character like any other. */
    T_ENCODES(t, "a", A);
    T_EQ_INT(zi_tok_encode(t, "a\0b", 3, &ids, &n, err, sizeof err), 0);
    T_EQ_INT(n, 2);
    free(ids);
    zi_tok_free(t);
}

TEST(t_vocab_merges_files)
{
    char dir[700], p[1000], err[512];
    snprintf(dir, sizeof dir, "%s/qwen", px_test_tmpdir());
    mkdir(dir, 0755);
    /* vocab.json: the letters, space, newline and "ab"; merges.txt with its
     * version comment and a CRLF line; added tokens from tokenizer_config. */
    char vocab[2048] = "{";
    for (int i = 0; i < 26; i++)
        snprintf(vocab + strlen(vocab), sizeof vocab - strlen(vocab), "\"%c\":%d,", 'a' + i, i);
    strcat(vocab, "\"\\u0120\":26,\"\\u010a\":27,\"bc\":28,\"abc\":29}");
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    spit(p, vocab);
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    spit(p, "#version: 0.2\nb c\r\na bc\n");
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    spit(p, "{\"added_tokens_decoder\":{\"40\":{\"content\":\"<|im_start|>\",\"special\":true},"
            "\"41\":{\"content\":\"<|im_end|>\",\"special\":true}},\"model_max_length\":131072}");
    zi_tok *t;
    T_EQ_INT(zi_tok_load(dir, &t, err, sizeof err), 0);
    T_ENCODES(t, "abc<|im_end|>cabc", 29, 41, C, 29);
    int32_t ids[64];
    size_t n;
    bool tr;
    T_EQ_INT(zi_tok_encode_prompt(t, "abc", ids, 64, &n, &tr, err, sizeof err), 0);
    T_EQ_INT(ids[0], 40);
    T_EQ_INT(ids[6], 29);
    zi_tok_free(t);

    /* A model directory: DIR/tokenizer/ holds the files. */
    char model[800];
    snprintf(model, sizeof model, "%s/model", px_test_tmpdir());
    mkdir(model, 0755);
    snprintf(p, sizeof p, "%s/tokenizer", model);
    T_EQ_INT(rename(dir, p), 0);
    T_EQ_INT(zi_tok_load(model, &t, err, sizeof err), 0);
    T_ENCODES(t, "abc", 29);
    zi_tok_free(t);

    /* tokenizer.json is preferred when both are there. */
    char *j = tiny_json("", "", "", "");
    snprintf(p, sizeof p, "%s/tokenizer/tokenizer.json", model);
    spit(p, j);
    free(j);
    T_EQ_INT(zi_tok_load(model, &t, err, sizeof err), 0);
    T_ENCODES(t, "abc", A, B, C);
    zi_tok_free(t);
    T_EQ_INT(zi_tok_load(p, &t, err, sizeof err), 0); /* the file itself */
    zi_tok_free(t);

    /* Errors name the file. */
    snprintf(p, sizeof p, "%s/tokenizer/tokenizer.json", model);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer/merges.txt", model);
    spit(p, "b c\nabc\n");
    T_EQ_INT(zi_tok_load(model, &t, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "tokenizer/merges.txt: line 2 is not two tokens joined by one space");
    T_TRUE(t == NULL);
    snprintf(p, sizeof p, "%s/empty", px_test_tmpdir());
    mkdir(p, 0755);
    T_EQ_INT(zi_tok_load(p, &t, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "holds neither tokenizer.json nor vocab.json + merges.txt");
    snprintf(p, sizeof p, "%s/nonexistent.json", px_test_tmpdir());
    T_EQ_INT(zi_tok_load(p, &t, err, sizeof err), PX_EIO);
    T_CONTAINS(err, "cannot open");
    T_CONTAINS(err, "nonexistent.json");
}

/* Malformed tokenizer.json files and what the loader says about them. */
#define M(v, m) "{\"model\":{\"vocab\":" v ",\"merges\":" m "}}"
#define OK_MODEL "\"model\":{\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}"
static const struct bad_case {
    const char *json;
    int rc;
    const char *msg;
} BAD[] = {
    {"{\"model\":", PX_ECORRUPT, "not valid JSON"},
    {"[1]", PX_ECORRUPT, "not a JSON object"},
    {"{\"model\":1}", PX_ECORRUPT, "no \"model\" object"},
    {M("[]", "[]"), PX_ECORRUPT, "model.vocab is not an object"},
    {M("{}", "[]"), PX_ECORRUPT, "model.vocab is empty"},
    {M("{\"a\":-1}", "[]"), PX_ECORRUPT, "token \"a\" has no integer id"},
    {M("{\"a\":1.5}", "[]"), PX_ECORRUPT, "token \"a\" has no integer id"},
    {M("{\"a\":99999999}", "[]"), PX_ECORRUPT, "has no integer id in [0, 16777215]"},
    {M("{\"a\":\"0\"}", "[]"), PX_ECORRUPT, "has no integer id"},
    {M("{\"a\":0,\"b\":0}", "[]"), PX_ECORRUPT, "id 0 is given to two tokens"},
    {M("{\"a\":0,\"a\":1}", "[]"), PX_ECORRUPT, "token \"a\" appears twice"},
    {M("{\"\\u4e00\":0}", "[]"), PX_ECORRUPT, "is not a byte-level BPE token"},
    {M("{\" \":0}", "[]"), PX_ECORRUPT, "is not a byte-level BPE token"},
    {M("{\"\":0}", "[]"), PX_ECORRUPT, "is not a byte-level BPE token"},
    {M("{\"a\":0}", "\"x\""), PX_ECORRUPT, "model.merges is not an array"},
    {M("{\"a\":0}", "[\"a b\"]"), PX_ECORRUPT, "merge 0 (\"a\" \"b\"): the right part is not"},
    {M("{\"a\":0,\"b\":1}", "[\"a b\"]"), PX_ECORRUPT, "the merged token is not in the vocab"},
    {M("{\"a\":0}", "[\"aa\"]"), PX_ECORRUPT, "merge 0 \"aa\" is not two tokens joined by one"},
    {M("{\"a\":0}", "[\"a  a\"]"), PX_ECORRUPT, "is not two tokens joined by one space"},
    {M("{\"a\":0}", "[[\"a\"]]"), PX_ECORRUPT, "merge 0 is neither"},
    {M("{\"a\":0}", "[7]"), PX_ECORRUPT, "merge 0 is neither"},
    {"{\"added_tokens\":{}," OK_MODEL "}", PX_ECORRUPT, "added_tokens is not an array"},
    {"{\"added_tokens\":[{\"id\":5}]," OK_MODEL "}", PX_ECORRUPT, "id 5 has no content"},
    {"{\"added_tokens\":[{\"id\":5,\"content\":\"\"}]," OK_MODEL "}", PX_ECORRUPT, "no content"},
    {"{\"added_tokens\":[{\"content\":\"<x>\"}]," OK_MODEL "}", PX_ECORRUPT, "no integer id"},
    {"{\"added_tokens\":[3]," OK_MODEL "}", PX_ECORRUPT, "entry is not an object"},
    {"{\"added_tokens\":[{\"id\":0,\"content\":\"<x>\"}]," OK_MODEL "}", PX_ECORRUPT,
     "added token 0 \"<x>\" is not the vocabulary's token of that id"},
    {"{\"added_tokens\":[{\"id\":2,\"content\":\"<x>\"},{\"id\":2,\"content\":\"<y>\"}]," OK_MODEL
     "}", PX_ECORRUPT, "id 2 appears twice"},
    {"{\"added_tokens\":[{\"id\":2,\"content\":\"<x>\"},{\"id\":3,\"content\":\"<x>\"}]," OK_MODEL
     "}", PX_ECORRUPT, "added tokens 2 and 3 have the same content"},
    {"{\"added_tokens\":[{\"id\":2,\"content\":\"<x>\",\"special\":\"yes\"}]," OK_MODEL "}",
     PX_ECORRUPT, "must be booleans"},
    {"{\"normalizer\":{\"type\":\"NFKC\"}," OK_MODEL "}", PX_EUNSUP,
     "normalizer \"NFKC\" is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"Whitespace\"}," OK_MODEL "}", PX_EUNSUP,
     "pre_tokenizer \"Whitespace\" is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":"
     "\"Isolated\"}," OK_MODEL "}", PX_ECORRUPT, "regex does not compile at offset 1"},
    {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":"
     "\"Removed\"}," OK_MODEL "}", PX_EUNSUP, "only supported with behavior Isolated"},
    {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":"
     "\"Isolated\"}," OK_MODEL "}", PX_EUNSUP, "Split without a Regex pattern"},
    {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true}," OK_MODEL "}",
     PX_EUNSUP, "add_prefix_space is not supported"},
    {"{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},"
     "{\"type\":\"ByteLevel\"}]}," OK_MODEL "}", PX_EUNSUP, "two regex splits"},
    {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}", PX_EUNSUP,
     "model type \"WordPiece\" is not supported"},
    {"{\"model\":{\"dropout\":0.1,\"vocab\":{\"a\":0},\"merges\":[]}}", PX_EUNSUP, "dropout"},
    {"{\"model\":{\"byte_fallback\":true,\"vocab\":{\"a\":0},\"merges\":[]}}", PX_EUNSUP,
     "byte_fallback is not supported"},
    {"{\"model\":{\"continuing_subword_prefix\":\"##\",\"vocab\":{\"a\":0},\"merges\":[]}}",
     PX_EUNSUP, "continuing_subword_prefix is not supported"},
    {"{\"model\":{\"unk_token\":\"<unk>\",\"vocab\":{\"a\":0},\"merges\":[]}}", PX_ECORRUPT,
     "model.unk_token \"<unk>\" is not a token"},
};

/* BPE against a naive one (merge the lowest-ranked pair, leftmost first,
 * until none is left) on random merge tables and random words up to 400
 * letters long: long words exercise the heap with many stale entries. */
#define NV 400
static int32_t rank_of[NV][NV], merged_of[NV][NV];

TEST(t_bpe_naive)
{
    static char tok[NV][64];
    int nv = 4;
    for (int i = 0; i < 4; i++) tok[i][0] = (char)('a' + i);
    for (int a = 0; a < NV; a++)
        for (int b = 0; b < NV; b++) rank_of[a][b] = -1;
    unsigned seed = 12345;
    size_t cap = 1 << 20, at = 0;
    char *j = malloc(cap), *m = malloc(cap);
    size_t mat = 0;
    int nm = 0;
    for (int tries = 0; nv < NV && tries < 20000; tries++) {
        seed = seed * 1103515245u + 12345u;
        int a = (int)((seed >> 8) % (unsigned)nv);
        seed = seed * 1103515245u + 12345u;
        int b = (int)((seed >> 8) % (unsigned)nv);
        if (rank_of[a][b] >= 0 || strlen(tok[a]) + strlen(tok[b]) > 40) continue;
        char cat[128];
        snprintf(cat, sizeof cat, "%s%s", tok[a], tok[b]);
        int id = -1;
        for (int k = 0; k < nv; k++)
            if (!strcmp(tok[k], cat)) id = k;
        if (id < 0) strcpy(tok[id = nv++], cat);
        rank_of[a][b] = nm++;
        merged_of[a][b] = id;
        mat += (size_t)snprintf(m + mat, cap - mat, "%s\"%s %s\"", nm > 1 ? "," : "", tok[a],
                                tok[b]);
    }
    at += (size_t)snprintf(j, cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (int k = 0; k < nv; k++)
        at += (size_t)snprintf(j + at, cap - at, "%s\"%s\":%d", k ? "," : "", tok[k], k);
    snprintf(j + at, cap - at, "},\"merges\":[%s]}}", m);
    char err[512];
    zi_tok *t;
    if (zi_tok_load_json(j, strlen(j), "random.json", &t, err, sizeof err))
        px_tfail(PX_TLOC_, "%s", err);
    free(j);
    free(m);
    int32_t sym[400];
    char word[401];
    for (int w = 0; w < 300; w++) {
        seed = seed * 1103515245u + 12345u;
        int len = 1 + (int)((seed >> 8) % 400u), n = len;
        for (int i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            sym[i] = (int32_t)((seed >> 8) % 3u); /* a-c: more repeats, more merges */
            word[i] = (char)('a' + sym[i]);
        }
        word[len] = 0;
        for (;;) { /* naive BPE */
            int best = -1;
            for (int i = 0; i + 1 < n; i++) {
                int r = rank_of[sym[i]][sym[i + 1]];
                if (r >= 0 && (best < 0 || r < rank_of[sym[best]][sym[best + 1]])) best = i;
            }
            if (best < 0) break;
            sym[best] = merged_of[sym[best]][sym[best + 1]];
            memmove(sym + best + 1, sym + best + 2, (size_t)(n - best - 2) * sizeof *sym);
            n--;
        }
        int32_t *ids;
        size_t ni;
        T_EQ_INT(zi_tok_encode(t, word, (size_t)len, &ids, &ni, err, sizeof err), 0);
        if (!same_ids("bpe", word, ids, ni, sym, (size_t)n)) px_tfail(PX_TLOC_, "word %d", w);
        free(ids);
    }
    printf("  random BPE: %d tokens, %d merges, 300 words equal to the naive order\n", nv, nm);
    zi_tok_free(t);
}

TEST(t_load_errors)
{
    char err[512];
    zi_tok *t = (zi_tok *)1;
    /* The base of the table loads. */
    const char *ok = "{" OK_MODEL "}";
    T_EQ_INT(zi_tok_load_json(ok, strlen(ok), "bad.json", &t, err, sizeof err), 0);
    T_ENCODES(t, "ab ab", A, B, A, B); /* no pre-tokenizer, no space token: one word */
    zi_tok_free(t);
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        err[0] = 0;
        int rc = zi_tok_load_json(BAD[i].json, strlen(BAD[i].json), "bad.json", &t, err,
                                  sizeof err);
        if (rc != BAD[i].rc || !strstr(err, BAD[i].msg) || strncmp(err, "bad.json: ", 10) || t)
            px_tfail(PX_TLOC_, "case %zu %s: rc %d (want %d), \"%s\" (want \"%s\")", i,
                     BAD[i].json, rc, BAD[i].rc, err, BAD[i].msg);
    }
    /* vocab.json + merges.txt + tokenizer_config.json from memory. */
    static const char *cfgs[][2] = {
        {"{\"added_tokens_decoder\":{\" 40\":{\"content\":\"<x>\"}}}", "key \" 40\" is not an id"},
        {"{\"added_tokens_decoder\":{\"-1\":{\"content\":\"<x>\"}}}", "key \"-1\" is not an id"},
        {"{\"added_tokens_decoder\":[]}", "added_tokens_decoder is not an object"},
        {"[]", "tokenizer_config.json: not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        int rc = zi_tok_load_vocab_merges("{\"a\":0}", 7, "", 0, cfgs[i][0], strlen(cfgs[i][0]),
                                          "dir", &t, err, sizeof err);
        if (rc != PX_ECORRUPT || !strstr(err, cfgs[i][1]) || strncmp(err, "dir/", 4) || t)
            px_tfail(PX_TLOC_, "config %zu: rc %d, \"%s\"", i, rc, err);
    }
    T_EQ_INT(zi_tok_load_vocab_merges("{\"a\":0}", 7, "a a\n", 4, NULL, 0, "dir", &t, err,
                                      sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "dir/merges.txt: merge 0 (\"a\" \"a\"): the merged token is not in the");
}

TEST_MAIN(t_merge_rank_order, t_merge_ties_leftmost, t_merge_array_form, t_regex_split,
          t_unknown_token, t_added_tokens, t_added_strip, t_prompt_cap, t_invalid_utf8,
          t_vocab_merges_files, t_bpe_naive, t_load_errors)
