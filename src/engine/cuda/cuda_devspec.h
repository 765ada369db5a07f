/*
 * cuda_devspec.h — naming GPUs without touching CUDA: the `--device` value
 * an engine is given ("cuda", "cuda:N", "cuda:N,M") and the process's
 * CUDA_VISIBLE_DEVICES. Plain C, built in every build (so its tests run
 * without a GPU); cuda_device.h does the CUDA side.
 *
 * Why parse CUDA_VISIBLE_DEVICES ourselves: the CUDA runtime renumbers the
 * devices it lets through from 0, while NVML (the monitor, nvidia-smi)
 * counts every GPU of the host. An engine that says which physical GPU its
 * "cuda:0" is, or why no device is visible, needs the variable's reading.
 */
#ifndef PX_ENGINE_CUDA_CUDA_DEVSPEC_H
#define PX_ENGINE_CUDA_CUDA_DEVSPEC_H

#include <stddef.h>

/* Devices one engine instance drives at most. */
#define PX_CUDA_MAX_DEVICES 16

/* One CUDA_VISIBLE_DEVICES entry as written, an index ("2") or a UUID
 * ("GPU-8e6a...", "MIG-..."), NUL-terminated; longer entries are cut. */
#define PX_CUDA_ID_LEN 96
typedef struct {
    char id[PX_CUDA_ID_LEN];
} px_cuda_visible_id;

/*
 * Reads a CUDA_VISIBLE_DEVICES value the way the CUDA documentation states
 * the runtime does: comma-separated entries, each a non-negative device
 * index or a "GPU-"/"MIG-" UUID (spaces around an entry are ignored), and
 * the list ends at the first entry that is neither (so "-1" or "" hides
 * every GPU). A repeated entry also ends it (one GPU is never two CUDA
 * devices). ids[i] receives the i-th visible entry (ids may be NULL).
 * Returns the number of entries that make devices visible (at most max),
 * or -1 when s is NULL: the variable is unset and every GPU is visible.
 */
int px_cuda_visible_parse(const char *s, px_cuda_visible_id *ids, int max);

/*
 * Parses an engine's device value against `count` visible CUDA devices:
 * "cuda" = every one (at most PX_CUDA_MAX_DEVICES), "cuda:N" or "cuda:N,M"
 * = those, in that order. devs receives the CUDA ordinals, *n their number.
 * Returns 0, or PX_EUNSUP with "<who>: bad device ..." (or "no CUDA device
 * is visible" when count is 0) in err.
 */
int px_cuda_devspec_parse(const char *spec, int count, int *devs, int *n, const char *who,
                          char *err, size_t errlen);

#endif
