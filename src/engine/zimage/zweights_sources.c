/*
 * zweights_sources.c — the Z-Image weight store's readers (zweights_impl.h):
 * finds what a path holds (a Hugging Face component directory with one
 * safetensors file or shards and their index, a single safetensors file, a
 * GGUF file), opens the containers and lists their tensors as source tensors
 * for zweights.c to map and convert. A sharded index is checked against the
 * shards both ways, so a tensor can neither be lost nor loaded twice.
 */
#include "engine/zimage/zweights_impl.h"

#include "core/err.h"
#include "core/jsonr.h"
#include "engine/safetensors.h"
#include "engine/zimage/gguf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INDEX_BYTES ((size_t)64 << 20)

static int add_file(zi_weights *w, const char *path, char *err, size_t errlen)
{
    if (w->nfiles == MAX_FILES)
        return px_errf(err, errlen, PX_EUNSUP, "%s: more than %d files", w->path, MAX_FILES);
    src_file *f = &w->files[w->nfiles];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    w->nfiles++;
    return 0;
}

static src_tensor *push_src(loader *L)
{
    if (L->ns == L->caps) {
        int nc = L->caps ? 2 * L->caps : 256;
        src_tensor *p = realloc(L->s, (size_t)nc * sizeof *p);
        if (!p) return NULL;
        L->s = p;
        L->caps = nc;
    }
    src_tensor *s = &L->s[L->ns++];
    memset(s, 0, sizeof *s);
    return s;
}

/* Adds the tensors of the last opened safetensors file. */
static int add_st(loader *L, char *err, size_t errlen)
{
    int fi = L->w->nfiles - 1;
    const px_st *st = L->w->files[fi].st;
    for (int i = 0; i < px_st_count(st); i++) {
        const px_st_tensor *t = px_st_at(st, i);
        src_tensor *s = push_src(L);
        if (!s) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        s->name = t->name;
        s->file = fi;
        s->type = px_st_dtype_name(t->dtype);
        s->enc = t->dtype == PX_ST_F32    ? ENC_F32
                 : t->dtype == PX_ST_BF16 ? ENC_BF16
                 : t->dtype == PX_ST_F16  ? ENC_F16
                 : t->dtype == PX_ST_F64  ? ENC_F64
                                          : ENC_BAD;
        s->ndim = t->ndim;
        if (t->ndim > ZI_MAX_DIMS) s->enc = ENC_BAD;
        for (int d = 0; d < t->ndim && d < ZI_MAX_DIMS; d++) s->shape[d] = t->shape[d];
        s->nelem = t->nelem;
        s->data = t->data;
    }
    return 0;
}

/* Adds the tensors of the last opened GGUF file (dims reversed: GGUF lists
 * the innermost first, PyTorch the outermost). */
static int add_gguf(loader *L, char *err, size_t errlen)
{
    int fi = L->w->nfiles - 1;
    const zi_gguf *g = L->w->files[fi].gg;
    for (int i = 0; i < zi_gguf_count(g); i++) {
        const zi_gguf_tensor *t = zi_gguf_at(g, i);
        src_tensor *s = push_src(L);
        if (!s) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        s->name = t->name;
        s->file = fi;
        s->type = zi_gguf_type_name(t->type);
        s->gtype = t->type;
        s->enc = t->type == ZI_GGUF_F32            ? ENC_F32
                 : t->type == ZI_GGUF_BF16         ? ENC_BF16
                 : t->type == ZI_GGUF_F16          ? ENC_F16
                 : zi_gguf_type_supported(t->type) ? ENC_QUANT
                                                   : ENC_BAD;
        s->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) s->shape[d] = (int64_t)t->ne[t->ndim - 1 - d];
        s->nelem = t->nelem;
        s->data = t->data;
    }
    return 0;
}

static int open_st(loader *L, const char *path, char *err, size_t errlen)
{
    int rc = add_file(L->w, path, err, errlen);
    if (!rc) rc = px_st_open(path, &L->w->files[L->w->nfiles - 1].st, err, errlen);
    return rc ? rc : add_st(L, err, errlen);
}

static int open_gguf(loader *L, const char *path, char *err, size_t errlen)
{
    int rc = add_file(L->w, path, err, errlen);
    if (!rc) rc = zi_gguf_open(path, &L->w->files[L->w->nfiles - 1].gg, err, errlen);
    return rc ? rc : add_gguf(L, err, errlen);
}

/* A file by its first bytes: GGUF's magic, else safetensors. */
static int open_file(loader *L, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path, strerror(errno));
    char magic[4] = {0};
    ssize_t r = read(fd, magic, 4);
    close(fd);
    if (r == 4 && !memcmp(magic, "GGUF", 4)) return open_gguf(L, path, err, errlen);
    return open_st(L, path, err, errlen);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Reads a whole small file (at most max bytes). Caller frees *out. */
static int read_small(const char *path, size_t max, char **out, size_t *len, char *err,
                      size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    if (bad) {
        free(buf);
        return px_errf(err, errlen, PX_EIO, "cannot read %s", path);
    }
    if (n > max) {
        free(buf);
        return px_errf(err, errlen, PX_ETOOBIG, "%s is larger than %zu bytes", path, max);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

typedef struct wm_entry {
    const char *name, *shard;
} wm_entry;

static int cmp_wm(const void *a, const void *b)
{
    return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

/* The opened file of a shard name, or nfiles. */
static int shard_file(const loader *L, const char *shard)
{
    int f = 0;
    while (f < L->w->nfiles && strcmp(strrchr(L->w->files[f].path, '/') + 1, shard)) f++;
    return f;
}

/* Checks that the index (wm, n entries) and the opened shards agree
 * exactly: each listed tensor is in its shard, each shard tensor is listed
 * with that shard, no tensor twice. */
static int check_index(const loader *L, const char *ipath, wm_entry *wm, int n, char *err,
                       size_t errlen)
{
    qsort(wm, (size_t)n, sizeof *wm, cmp_wm);
    for (int i = 1; i < n; i++)
        if (!strcmp(wm[i - 1].name, wm[i].name))
            return px_errf(err, errlen, PX_ECORRUPT, "%s: tensor %.100s is listed twice", ipath,
                           wm[i].name);
    for (int i = 0; i < n; i++) {
        int f = shard_file(L, wm[i].shard);
        if (!px_st_find(L->w->files[f].st, wm[i].name))
            return px_errf(err, errlen, PX_ECORRUPT,
                           "%s: tensor %.100s is listed in %s, which does not hold it", ipath,
                           wm[i].name, L->w->files[f].path);
    }
    for (int i = 0; i < L->ns; i++) {
        wm_entry key = {L->s[i].name, NULL};
        const wm_entry *e = bsearch(&key, wm, (size_t)n, sizeof *wm, cmp_wm);
        const char *fp = zw_src_path(L, &L->s[i]);
        if (!e)
            return px_errf(err, errlen, PX_ECORRUPT, "%s: tensor %.100s is not in the index %s", fp,
                           L->s[i].name, ipath);
        if (strcmp(strrchr(fp, '/') + 1, e->shard))
            return px_errf(err, errlen, PX_ECORRUPT,
                           "%s: tensor %.100s is in this shard too, but the index puts it in %s",
                           fp, L->s[i].name, e->shard);
    }
    return 0;
}

/* Opens the shards an index lists and checks them against it. */
static int open_index(loader *L, const char *dir, const char *index, char *err, size_t errlen)
{
    char *text = NULL, *ipath = join(dir, index);
    size_t len = 0;
    cJSON *root = NULL;
    wm_entry *wm = NULL;
    int rc = ipath ? read_small(ipath, MAX_INDEX_BYTES, &text, &len, err, errlen)
                   : px_errf(err, errlen, PX_ENOMEM, "out of memory");
    if (rc) goto fail;
    char what[300];
    snprintf(what, sizeof what, "%.280s", ipath);
    if (!(root = px_json_parse(text, len, 4, (size_t)1 << 22, what, NULL, err, errlen))) {
        rc = PX_ECORRUPT;
        goto fail;
    }
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    rc = PX_ECORRUPT;
    if (!cJSON_IsObject(map)) {
        px_errf(err, errlen, rc, "%s: no \"weight_map\" object", ipath);
        goto fail;
    }
    int n = cJSON_GetArraySize(map), k = 0;
    if (!(wm = calloc(n ? (size_t)n : 1, sizeof *wm))) goto nomem;
    for (const cJSON *e = map->child; e; e = e->next, k++) {
        const char *sh = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!sh || !*sh || strchr(sh, '/') || !strcmp(sh, ".") || !strcmp(sh, "..")) {
            px_errf(err, errlen, rc, "%s: tensor %.100s: shard is not a file name in the directory",
                    ipath, e->string);
            goto fail;
        }
        wm[k] = (wm_entry){e->string, sh};
        if (shard_file(L, sh) == L->w->nfiles) { /* each shard opened once */
            char *sp = join(dir, sh);
            if (!sp) goto nomem;
            rc = open_st(L, sp, err, errlen);
            free(sp);
            if (rc) goto fail;
            rc = PX_ECORRUPT;
        }
    }
    rc = check_index(L, ipath, wm, n, err, errlen);
    goto fail;
nomem:
    rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
fail:
    free(wm);
    cJSON_Delete(root);
    free(text);
    free(ipath);
    return rc;
}

/* A Hugging Face component directory: config.json and either one
 * *.safetensors.index.json with its shards or exactly one *.safetensors. */
static int open_dir(loader *L, const char *dir, char *err, size_t errlen)
{
    char *cfg = join(dir, "config.json");
    if (!cfg) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    int ok = access(cfg, R_OK) == 0;
    free(cfg);
    char *idx = join(dir, "model_index.json");
    int top = idx && access(idx, R_OK) == 0;
    free(idx);
    if (!ok)
        return px_errf(err, errlen, PX_EUNSUP,
                       "%s: no config.json: not a Hugging Face component directory%s", dir,
                       top ? " (a pipeline directory: give its transformer/, text_encoder/ or vae/)"
                           : "");
    DIR *d = opendir(dir);
    if (!d) return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", dir, strerror(errno));
    char index[256] = "", single[256] = "";
    int nindex = 0, nsingle = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (ends_with(de->d_name, ".safetensors.index.json") && strlen(de->d_name) < sizeof index) {
            nindex++;
            snprintf(index, sizeof index, "%s", de->d_name);
        } else if (ends_with(de->d_name, ".safetensors") && strlen(de->d_name) < sizeof single) {
            nsingle++;
            snprintf(single, sizeof single, "%s", de->d_name);
        }
    }
    closedir(d);
    if (nindex > 1)
        return px_errf(err, errlen, PX_EUNSUP, "%s: %d *.safetensors.index.json files: which one?",
                       dir, nindex);
    if (nindex) return open_index(L, dir, index, err, errlen);
    if (nsingle != 1)
        return px_errf(err, errlen, PX_EUNSUP, "%s: %s *.safetensors files and no index", dir,
                       nsingle ? "several" : "no");
    char *p = join(dir, single);
    if (!p) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    int rc = open_st(L, p, err, errlen);
    free(p);
    return rc;
}

int zw_open_sources(loader *L, const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return open_dir(L, path, err, errlen);
    return open_file(L, path, err, errlen);
}
