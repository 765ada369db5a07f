/*
 * tokenizer.h — the byte-level BPE tokenizer of Z-Image's text encoder
 * (Qwen3): loads a Hugging Face tokenizer.json (or vocab.json + merges.txt),
 * turns a prompt into token ids the way the reference pipeline does (added
 * tokens matched first, NFC, the pre-tokenizer regex through PCRE2, the GPT-2
 * byte↦unicode map, ranked merges), wraps it in the Z-Image chat template
 * with the 512-token cap, and decodes ids back to text for tests and
 * debugging.
 *
 * A loaded tokenizer is immutable: any number of threads may encode and
 * decode with it at once. Every call that fails returns a negative PX_E*
 * code with a message in err[errlen] (see core/err.h).
 *
 * Input text must be valid UTF-8: invalid bytes are rejected (PX_EINVAL,
 * naming the byte offset), never replaced, so that what the model sees is
 * always what the caller sent.
 */
#ifndef PX_ENGINE_ZIMAGE_TOKENIZER_H
#define PX_ENGINE_ZIMAGE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zi_tok zi_tok;

/* The Z-Image text encoder's token cap (template included). */
#define ZI_TOK_MAX_PROMPT 512

/* Ids above this are refused at load time (Qwen3's largest is 151668). */
#define ZI_TOK_MAX_ID ((1 << 24) - 1)

/* Loads a tokenizer from `path`: a tokenizer.json file, or a directory that
 * holds tokenizer.json, or vocab.json + merges.txt (with the added tokens of
 * tokenizer_config.json when it is there), or a model directory whose
 * tokenizer/ subdirectory holds them. The files are untrusted: every field is
 * checked and the message names the file and what was wrong. On success
 * *out is the caller's to free with zi_tok_free(); on failure *out is NULL. */
int zi_tok_load(const char *path, zi_tok **out, char *err, size_t errlen);

/* Same from the bytes of a tokenizer.json in memory; `name` is what error
 * messages call it. */
int zi_tok_load_json(const char *json, size_t len, const char *name, zi_tok **out, char *err,
                     size_t errlen);

/* Same from the bytes of vocab.json and merges.txt, plus optionally those of
 * tokenizer_config.json (its added_tokens_decoder; NULL if none). These files
 * carry no normaliser or pre-tokenizer: NFC and the Qwen regex are used. */
int zi_tok_load_vocab_merges(const char *vocab, size_t vlen, const char *merges, size_t mlen,
                             const char *config, size_t clen, const char *name, zi_tok **out,
                             char *err, size_t errlen);

void zi_tok_free(zi_tok *tok);

/* Encodes text[0..len) without any template: added tokens (special or not)
 * found in the text become their ids. *ids is malloc'd (caller frees; it is
 * non-NULL even when *n is 0). PX_EINVAL for invalid UTF-8, PX_ETOOBIG above
 * 1 GiB, PX_ENOMEM. */
int zi_tok_encode(const zi_tok *tok, const char *text, size_t len, int32_t **ids, size_t *n,
                  char *err, size_t errlen);

/* Encodes `prompt` (NUL-terminated UTF-8) wrapped in the Z-Image chat
 * template "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
 * into ids[0..cap), *n tokens. When the whole would exceed cap, the prompt's
 * tail is cut: the first cap-5 tokens of "<|im_start|>user\n{prompt}" are
 * kept and the template's five closing tokens always follow, and *truncated
 * is set (false otherwise). cap is normally ZI_TOK_MAX_PROMPT; a cap too
 * small to hold the template and one token of prompt is PX_EINVAL, as is a
 * tokenizer without <|im_start|>/<|im_end|> or a prompt that is not UTF-8. */
int zi_tok_encode_prompt(const zi_tok *tok, const char *prompt, int32_t *ids, size_t cap,
                         size_t *n, bool *truncated, char *err, size_t errlen);

/* Decodes ids back to UTF-8 bytes (added tokens as their text unless
 * skip_special and they are special). *text is malloc'd and NUL-terminated
 * (caller frees), *len excludes the NUL. A cut sequence may end inside a
 * character: the bytes are returned as they are. PX_EINVAL for an id that is
 * not in the vocabulary. */
int zi_tok_decode(const zi_tok *tok, const int32_t *ids, size_t n, bool skip_special, char **text,
                  size_t *len, char *err, size_t errlen);

/* Id of a token given by its text (an added token's content, or the raw
 * bytes of a vocabulary entry), or -1 if there is none. */
int32_t zi_tok_id(const zi_tok *tok, const char *text, size_t len);

/* One more than the largest id (151669 for Qwen3). */
int32_t zi_tok_vocab_size(const zi_tok *tok);

/* Whether the pre-tokenizer regex runs JIT-compiled (for reports). */
bool zi_tok_jit(const zi_tok *tok);

#endif
