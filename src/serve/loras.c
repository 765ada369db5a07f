/*
 * loras.c — the LoRA registry (see loras.h).
 *
 * Two locks: mu guards the names, the loaded list, the holds and the byte
 * count, and is only held for short list work; load_mu serialises what
 * reads files (loads and registrations), so two requests never load the
 * same LoRA twice. Removals take only mu and never wait for a load: a load
 * re-checks its entry (by id) before keeping what it read. Order: load_mu,
 * then mu. Engines' LoRAs are closed outside both (closing frees large
 * buffers).
 *
 * A loaded LoRA (px_lora_hold) belongs to its name's entry while the entry
 * exists; a removed or replaced entry leaves its loaded LoRAs detached
 * (entry NULL): invisible to lookups, closed by their last release.
 */
#include "serve/loras.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXT ".safetensors"
#define FILE_MAX 256

typedef struct entry {
    char name[PX_LORA_NAME_MAX + 1];
    char file[FILE_MAX]; /* in the directory */
    uint64_t size;       /* of the file when registered */
    uint64_t id;         /* unique: tells a replaced entry of the same name */
} entry;

struct px_lora_hold {
    entry *entry; /* NULL once removed or replaced */
    px_engine *engine;
    px_engine_lora *lora;
    char *desc;     /* px_engine_lora_describe's members */
    uint64_t bytes; /* what it holds in memory */
    double load_ms;
    int holds;
    uint64_t used; /* r->clock at the last acquire: least recently used goes first */
    struct px_lora_hold *next;
};

struct px_loras {
    char *dir;
    uint64_t cache_bytes;
    pthread_mutex_t mu, load_mu;
    entry *entries[PX_LORAS_MAX]; /* sorted by name */
    int nentries;
    struct px_lora_hold *loaded; /* every open LoRA, detached ones too */
    uint64_t loaded_bytes, clock;
};

/* ------------------------------------------------------------ names */

int px_lora_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > PX_LORA_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '_' && (i == 0 || (c != '.' && c != '-'))) return 0;
    }
    return 1;
}

/* A plain file name of a .safetensors file: no directory part, not hidden. */
static int file_ok(const char *f)
{
    size_t n = strlen(f), e = strlen(EXT);
    return n > e && n < FILE_MAX && f[0] != '.' && !strchr(f, '/') && !strchr(f, '\\') &&
           !strcasecmp(f + n - e, EXT);
}

/* Where f lives; 0 or PX_ETOOBIG. */
static int path_of(const px_loras *r, const char *f, char *out, size_t n)
{
    int k = snprintf(out, n, "%s/%s", r->dir, f);
    return k < 0 || (size_t)k >= n ? PX_ETOOBIG : 0;
}

/* Index of name in the sorted entries, or -(insertion point) - 1. */
static int find(const px_loras *r, const char *name)
{
    int lo = 0, hi = r->nentries - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(r->entries[mid]->name, name);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -lo - 1;
}

static void names_locked(const px_loras *r, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < r->nentries; i++) {
        const char *nm = r->entries[i]->name;
        if (len + strlen(nm) + 6 >= n) {
            snprintf(out + len, n - len, "%s...", i ? ", " : "");
            return;
        }
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", nm);
    }
    if (!r->nentries) snprintf(out, n, "none");
}

void px_loras_names(px_loras *r, char *out, size_t n)
{
    pthread_mutex_lock(&r->mu);
    names_locked(r, out, n);
    pthread_mutex_unlock(&r->mu);
}

static int not_found(px_loras *r, const char *name, char *err, size_t errlen)
{
    char names[256];
    names_locked(r, names, sizeof names);
    return px_errf(err, errlen, PX_ENOTFOUND, "no LoRA named '%.64s' (available: %s)", name,
                   names);
}

/* ------------------------------------------------------------ open/close */

/* Adds (or replaces: returns the old one in *old) an entry; with mu held. */
static int put_entry(px_loras *r, const char *name, const char *file, uint64_t size,
                     entry **old)
{
    int i = find(r, name);
    *old = NULL;
    if (i < 0 && r->nentries >= PX_LORAS_MAX) return PX_EBUSY;
    entry *e = px_xcalloc(1, sizeof *e);
    e->id = ++r->clock;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->file, sizeof e->file, "%s", file);
    e->size = size;
    if (i >= 0) {
        *old = r->entries[i];
        r->entries[i] = e;
        return 0;
    }
    i = -i - 1;
    memmove(&r->entries[i + 1], &r->entries[i], (size_t)(r->nentries - i) * sizeof *r->entries);
    r->entries[i] = e;
    r->nentries++;
    return 0;
}

/* Reads the directory's *.safetensors files into the entries. */
static int scan(px_loras *r, char *err, size_t errlen)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return px_errf(err, errlen, errno == ENOENT ? PX_ENOTFOUND : PX_EIO,
                       "cannot read --lora-dir %s: %s", r->dir, strerror(errno));
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        if (!file_ok(f)) continue;
        char name[FILE_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(strlen(f) - strlen(EXT)), f);
        struct stat st;
        if (path_of(r, f, path, sizeof path) || stat(path, &st) || !S_ISREG(st.st_mode)) continue;
        entry *old;
        if (!px_lora_name_ok(name)) {
            PX_WARN("--lora-dir: skipping %s (a LoRA name is A-Z a-z 0-9 _ . -, at most %d)", f,
                    PX_LORA_NAME_MAX);
        } else if (put_entry(r, name, f, (uint64_t)st.st_size, &old)) {
            PX_WARN("--lora-dir: more than %d LoRAs; skipping %s", PX_LORAS_MAX, f);
        } else {
            free(old); /* the same stem in another case of the extension */
        }
    }
    closedir(d);
    return 0;
}

int px_loras_open(const char *dir, uint64_t cache_bytes, px_loras **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    px_loras *r = px_xcalloc(1, sizeof *r);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    r->dir = px_xcalloc(1, n + 1);
    memcpy(r->dir, dir, n);
    r->cache_bytes = cache_bytes;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->load_mu, NULL);
    int rc = scan(r, err, errlen);
    if (rc) {
        px_loras_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

static void close_lora(struct px_lora_hold *l)
{
    px_engine_lora_close(l->lora);
    free(l->desc);
    free(l);
}

void px_loras_close(px_loras *r)
{
    if (!r) return;
    for (struct px_lora_hold *l = r->loaded, *next; l; l = next) {
        next = l->next;
        if (l->holds) PX_ERROR("LoRA registry closed with %d holds left", l->holds);
        close_lora(l);
    }
    for (int i = 0; i < r->nentries; i++) free(r->entries[i]);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->load_mu);
    free(r->dir);
    free(r);
}

/* ------------------------------------------------------------ loading */

/* Unlinks l from the loaded list and its bytes from the count; with mu held. */
static void unlink_loaded(px_loras *r, struct px_lora_hold *l)
{
    for (struct px_lora_hold **p = &r->loaded; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    r->loaded_bytes -= l->bytes;
    l->next = NULL;
}

/* Moves what nobody holds out of the cache, least recently used first,
 * while the loaded bytes exceed the bound; the closed ones go to *closing
 * (closed by the caller without the lock). With mu held. */
static void evict_locked(px_loras *r, struct px_lora_hold **closing)
{
    while (r->cache_bytes && r->loaded_bytes > r->cache_bytes) {
        struct px_lora_hold *victim = NULL;
        for (struct px_lora_hold *l = r->loaded; l; l = l->next)
            if (!l->holds && l->entry && (!victim || l->used < victim->used)) victim = l;
        if (!victim) return; /* everything left is in use */
        unlink_loaded(r, victim);
        victim->next = *closing;
        *closing = victim;
    }
}

static void close_list(struct px_lora_hold *l)
{
    while (l) {
        struct px_lora_hold *next = l->next;
        close_lora(l);
        l = next;
    }
}

static struct px_lora_hold *find_loaded(const px_loras *r, const entry *e, const px_engine *eng)
{
    for (struct px_lora_hold *l = r->loaded; l; l = l->next)
        if (l->entry == e && l->engine == eng) return l;
    return NULL;
}

/* The bytes an open LoRA says it holds ("bytes" among its description's
 * members), else its file's size. */
static uint64_t bytes_of(const char *desc, uint64_t file_size)
{
    const char *b = desc ? strstr(desc, "\"bytes\":") : NULL;
    if (!b) return file_size;
    char *end;
    unsigned long long v = strtoull(b + 8, &end, 10);
    return end == b + 8 ? file_size : (uint64_t)v;
}

/* Rewrites the first path in an engine's message as shown (clients see
 * file names, not the server's directories or temporary files). */
static void scrub(char *err, size_t errlen, const char *path, const char *shown)
{
    char *at = err ? strstr(err, path) : NULL;
    if (!at) return;
    char tail[1024];
    snprintf(tail, sizeof tail, "%s", at + strlen(path));
    snprintf(at, errlen - (size_t)(at - err), "%s%s", shown, tail);
}

/* Opens path on engine eng into a new unattached px_lora_hold (messages
 * name the file as shown); with load_mu held (not mu). */
static int load(px_engine *eng, const char *path, const char *shown, uint64_t file_size,
                struct px_lora_hold **out, char *err, size_t errlen)
{
    int64_t t0 = px_now_ns();
    px_engine_lora *lora;
    int rc = px_engine_lora_open(eng, path, &lora, err, errlen);
    if (rc) {
        scrub(err, errlen, path, shown);
        return rc;
    }
    struct px_lora_hold *l = px_xcalloc(1, sizeof *l);
    l->load_ms = px_ns_to_ms(px_now_ns() - t0);
    l->engine = eng;
    l->lora = lora;
    px_buf d;
    px_buf_init(&d, 1 << 20);
    size_t len;
    if (px_engine_lora_describe(lora, &d)) px_buf_free(&d);
    l->desc = (char *)px_buf_steal(&d, &len); /* NUL-terminated; NULL when empty */
    l->bytes = bytes_of(l->desc, file_size);
    *out = l;
    return 0;
}

/* Attaches a loaded LoRA to its entry, with holds already set; with mu. */
static void attach_locked(px_loras *r, struct px_lora_hold *l, entry *e)
{
    l->entry = e;
    l->used = ++r->clock;
    l->next = r->loaded;
    r->loaded = l;
    r->loaded_bytes += l->bytes;
}

/* Holds name's LoRA on e if it is loaded there: 0 with *out, 1 if it is
 * not loaded, or PX_ENOTFOUND; *id is the entry's. With mu held. */
static int hold_loaded_locked(px_loras *r, px_engine *e, const char *name,
                              struct px_lora_hold **out, uint64_t *id, char *err, size_t errlen)
{
    int i = find(r, name);
    if (i < 0) return not_found(r, name, err, errlen);
    struct px_lora_hold *l = find_loaded(r, r->entries[i], e);
    *id = r->entries[i]->id;
    if (!l) return 1;
    l->holds++;
    l->used = ++r->clock;
    *out = l;
    return 0;
}

/* Loads name on e and holds it; with load_mu held (so no other load or
 * registration runs), not mu. A removal may still come while the file is
 * read: then the LoRA is not kept. */
static int load_and_hold(px_loras *r, px_engine *e, const char *name, uint64_t id,
                         struct px_lora_hold **out, char *err, size_t errlen)
{
    char file[FILE_MAX], path[4096];
    uint64_t size;
    pthread_mutex_lock(&r->mu);
    int i = find(r, name);
    if (i < 0 || r->entries[i]->id != id) {
        int rc = not_found(r, name, err, errlen);
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    snprintf(file, sizeof file, "%s", r->entries[i]->file);
    size = r->entries[i]->size;
    pthread_mutex_unlock(&r->mu);
    if (path_of(r, file, path, sizeof path)) return px_errf(err, errlen, PX_EIO, "LoRA path too long");
    struct px_lora_hold *l, *closing = NULL;
    int rc = load(e, path, file, size, &l, err, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&r->mu);
    i = find(r, name);
    if (i < 0 || r->entries[i]->id != id) { /* removed or replaced meanwhile */
        rc = not_found(r, name, err, errlen);
        closing = l;
    } else {
        PX_INFO("LoRA %s loaded on %s in %.1f ms (%llu bytes)", name, px_engine_name(e),
                l->load_ms, (unsigned long long)l->bytes);
        l->holds = 1;
        attach_locked(r, l, r->entries[i]);
        evict_locked(r, &closing);
        *out = l;
    }
    pthread_mutex_unlock(&r->mu);
    close_list(closing);
    return rc;
}

int px_loras_acquire(px_loras *r, px_engine *e, const char *name, px_lora_hold **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    uint64_t id;
    /* The common case (loaded already) takes only mu. */
    pthread_mutex_lock(&r->mu);
    int rc = hold_loaded_locked(r, e, name, out, &id, err, errlen);
    pthread_mutex_unlock(&r->mu);
    if (rc <= 0) return rc;
    /* Else load it, unless a load that ran meanwhile did. */
    pthread_mutex_lock(&r->load_mu);
    pthread_mutex_lock(&r->mu);
    rc = hold_loaded_locked(r, e, name, out, &id, err, errlen);
    pthread_mutex_unlock(&r->mu);
    if (rc == 1) rc = load_and_hold(r, e, name, id, out, err, errlen);
    pthread_mutex_unlock(&r->load_mu);
    return rc;
}

const px_engine_lora *px_lora_hold_lora(const px_lora_hold *h)
{
    return h->lora;
}

void px_loras_release(px_loras *r, px_lora_hold *h)
{
    if (!h) return;
    struct px_lora_hold *closing = NULL;
    pthread_mutex_lock(&r->mu);
    if (--h->holds == 0 && !h->entry) { /* removed meanwhile: the last holder closes it */
        unlink_loaded(r, h);
        closing = h;
    } else {
        evict_locked(r, &closing);
    }
    pthread_mutex_unlock(&r->mu);
    close_list(closing);
}

/* ------------------------------------------------------------ registering */

/* Detaches every loaded LoRA of e (removed or replaced); the unheld ones
 * go to *closing. With mu held. */
static void detach_locked(px_loras *r, const entry *e, struct px_lora_hold **closing)
{
    for (struct px_lora_hold *l = r->loaded, *next; l; l = next) {
        next = l->next;
        if (l->entry != e) continue;
        l->entry = NULL;
        if (!l->holds) {
            unlink_loaded(r, l);
            l->next = *closing;
            *closing = l;
        }
    }
}

/* Registers name for file (in the directory) with its loaded LoRA l (or
 * NULL); with load_mu held. */
static int commit(px_loras *r, const char *name, const char *file, uint64_t size,
                  struct px_lora_hold *l, int *replaced, char *err, size_t errlen)
{
    struct px_lora_hold *closing = NULL;
    entry *old;
    pthread_mutex_lock(&r->mu);
    if (put_entry(r, name, file, size, &old)) {
        pthread_mutex_unlock(&r->mu);
        if (l) close_lora(l);
        return px_errf(err, errlen, PX_EBUSY, "%d LoRAs are registered (the limit); remove one",
                       PX_LORAS_MAX);
    }
    if (old) detach_locked(r, old, &closing);
    if (l) attach_locked(r, l, r->entries[find(r, name)]);
    evict_locked(r, &closing);
    pthread_mutex_unlock(&r->mu);
    free(old);
    close_list(closing);
    if (replaced) *replaced = old != NULL;
    return 0;
}

int px_loras_add_file(px_loras *r, px_engine *e, const char *name, const char *file,
                      int *replaced, char *err, size_t errlen)
{
    if (!px_lora_name_ok(name))
        return px_errf(err, errlen, PX_EINVAL,
                       "a LoRA name is 1 to %d characters of A-Z a-z 0-9 _ . - (starting with "
                       "a letter, digit or _)", PX_LORA_NAME_MAX);
    if (!file_ok(file))
        return px_errf(err, errlen, PX_EINVAL,
                       "'file' must be the name of a .safetensors file in the LoRA directory "
                       "(no path)");
    char path[4096];
    struct stat st;
    if (path_of(r, file, path, sizeof path) || stat(path, &st) || !S_ISREG(st.st_mode))
        return px_errf(err, errlen, PX_ENOTFOUND, "no file %.200s in the LoRA directory", file);
    pthread_mutex_lock(&r->load_mu);
    struct px_lora_hold *l;
    int rc = load(e, path, file, (uint64_t)st.st_size, &l, err, errlen);
    if (!rc) rc = commit(r, name, file, (uint64_t)st.st_size, l, replaced, err, errlen);
    pthread_mutex_unlock(&r->load_mu);
    return rc;
}

/* Writes data to a new temporary file in the directory (its path in tmp). */
static int write_temp(px_loras *r, const char *name, const void *data, size_t len, char *tmp,
                      size_t tmplen, char *err, size_t errlen)
{
    static atomic_uint counter;
    int k = snprintf(tmp, tmplen, "%s/.upload-%s-%ld-%u.tmp", r->dir, name, (long)getpid(),
                     atomic_fetch_add(&counter, 1));
    if (k < 0 || (size_t)k >= tmplen) return px_errf(err, errlen, PX_EIO, "LoRA path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return px_errf(err, errlen, PX_EIO, "cannot write into the LoRA directory: %s",
                               strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w, left -= (size_t)w;
    }
    int bad = left || fsync(fd);
    int saved = errno;
    if (close(fd)) bad = 1;
    if (bad) {
        unlink(tmp);
        return px_errf(err, errlen, PX_EIO, "cannot write the uploaded LoRA: %s",
                       strerror(saved ? saved : EIO));
    }
    return 0;
}

/* PX_EINVAL if file belongs to a registered name other than name; with mu. */
static int file_taken_locked(const px_loras *r, const char *name, const char *file, char *err,
                             size_t errlen)
{
    for (int i = 0; i < r->nentries; i++)
        if (strcmp(r->entries[i]->name, name) && !strcmp(r->entries[i]->file, file))
            return px_errf(err, errlen, PX_EINVAL,
                           "%s is the file of LoRA '%s'; remove that one first", file,
                           r->entries[i]->name);
    return 0;
}

int px_loras_add_upload(px_loras *r, px_engine *e, const char *name, const void *data,
                        size_t len, int *replaced, char *err, size_t errlen)
{
    if (!px_lora_name_ok(name))
        return px_errf(err, errlen, PX_EINVAL,
                       "a LoRA name is 1 to %d characters of A-Z a-z 0-9 _ . - (starting with "
                       "a letter, digit or _)", PX_LORA_NAME_MAX);
    char file[FILE_MAX], tmp[4096], path[4096];
    snprintf(file, sizeof file, "%s%s", name, EXT);
    if (path_of(r, file, path, sizeof path))
        return px_errf(err, errlen, PX_EIO, "LoRA path too long");
    pthread_mutex_lock(&r->load_mu);
    pthread_mutex_lock(&r->mu);
    int rc = file_taken_locked(r, name, file, err, errlen);
    pthread_mutex_unlock(&r->mu);
    if (!rc) rc = write_temp(r, name, data, len, tmp, sizeof tmp, err, errlen);
    if (rc) goto out;
    struct px_lora_hold *l;
    if ((rc = load(e, tmp, "the uploaded file", len, &l, err, errlen))) {
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path)) {
        rc = px_errf(err, errlen, PX_EIO, "cannot store the uploaded LoRA as %s: %s", file,
                     strerror(errno));
        unlink(tmp);
        close_lora(l);
        goto out;
    }
    rc = commit(r, name, file, len, l, replaced, err, errlen);
out:
    pthread_mutex_unlock(&r->load_mu);
    return rc;
}

int px_loras_remove(px_loras *r, const char *name, char *err, size_t errlen)
{
    struct px_lora_hold *closing = NULL;
    pthread_mutex_lock(&r->mu); /* not load_mu: a removal never waits for a load */
    int i = find(r, name), rc = 0;
    entry *e = NULL;
    if (i < 0) {
        rc = not_found(r, name, err, errlen);
    } else {
        e = r->entries[i];
        memmove(&r->entries[i], &r->entries[i + 1],
                (size_t)(r->nentries - i - 1) * sizeof *r->entries);
        r->nentries--;
        detach_locked(r, e, &closing);
    }
    pthread_mutex_unlock(&r->mu);
    free(e);
    close_list(closing);
    return rc;
}

/* ------------------------------------------------------------ listing */

static int loaded_anywhere(const px_loras *r, const entry *e)
{
    for (const struct px_lora_hold *l = r->loaded; l; l = l->next)
        if (l->entry == e) return 1;
    return 0;
}

/* One LoRA's object; with mu held. */
static int entry_json(const px_loras *r, const entry *e, px_buf *b)
{
    px_buf_puts(b, "{\"name\":");
    px_json_str(b, e->name);
    px_buf_puts(b, ",\"file\":");
    px_json_str(b, e->file);
    px_buf_printf(b, ",\"size_bytes\":%llu,\"loaded\":%s,\"engines\":[",
                  (unsigned long long)e->size, loaded_anywhere(r, e) ? "true" : "false");
    int k = 0;
    for (const struct px_lora_hold *l = r->loaded; l; l = l->next) {
        if (l->entry != e) continue;
        px_buf_puts(b, k++ ? ",{\"engine\":" : "{\"engine\":");
        px_json_str(b, px_engine_name(l->engine));
        if (l->desc && l->desc[0]) px_buf_printf(b, ",%s", l->desc);
        if (!l->desc || !strstr(l->desc, "\"bytes\":"))
            px_buf_printf(b, ",\"bytes\":%llu", (unsigned long long)l->bytes);
        px_buf_puts(b, ",\"load_ms\":");
        px_json_num(b, (double)(int64_t)(l->load_ms * 1000) / 1000);
        px_buf_printf(b, ",\"in_use\":%d}", l->holds);
    }
    return px_buf_puts(b, "]}");
}

int px_loras_json(px_loras *r, const char *name, px_buf *out)
{
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    if (name) {
        int i = find(r, name);
        rc = i < 0 ? PX_ENOTFOUND : entry_json(r, r->entries[i], out);
    } else {
        px_buf_printf(out, "{\"cache_limit_bytes\":%llu,\"loaded_bytes\":%llu,\"loras\":[",
                      (unsigned long long)r->cache_bytes, (unsigned long long)r->loaded_bytes);
        for (int i = 0; i < r->nentries && !rc; i++) {
            if (i) px_buf_puts(out, ",");
            rc = entry_json(r, r->entries[i], out);
        }
        if (!rc) rc = px_buf_puts(out, "]}");
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void px_loras_stats_get(px_loras *r, px_loras_stats *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&r->mu);
    s->registered = r->nentries;
    for (const struct px_lora_hold *l = r->loaded; l; l = l->next) {
        s->loaded++;
        s->held += l->holds;
    }
    s->loaded_bytes = r->loaded_bytes;
    pthread_mutex_unlock(&r->mu);
}
