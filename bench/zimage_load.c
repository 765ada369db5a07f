/*
 * zimage_load.c — time and memory of opening a Z-Image component with the
 * weight store (a benchmark, not a test: it asserts nothing).
 *
 *   zimage_load PATH dit|text|vae [f32|bf16] [keep-bf16]
 *       Opens PATH (HF component directory, safetensors or GGUF) with
 *       convert_to = f32 (default) or bf16 and BF16 sources kept or widened,
 *       then prints the tensor count, the bytes the store holds, the wall
 *       time, the peak resident memory of the process (VmHWM) and the
 *       resident memory after the load (VmRSS: mapped pages of tensors used
 *       in place are not resident until touched).
 */
#include "engine/zimage/zweights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A "VmXXX:   123 kB" line of /proc/self/status, in MiB. */
static double vm(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) v = atof(line + n + 1) / 1024;
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: zimage_load PATH dit|text|vae [f32|bf16] [keep-bf16]\n");
        return 2;
    }
    zi_part part = !strcmp(argv[2], "dit")    ? ZI_PART_DIT
                   : !strcmp(argv[2], "text") ? ZI_PART_TEXT
                                              : ZI_PART_VAE;
    zi_load_opts o = {.convert_to = argc > 3 && !strcmp(argv[3], "bf16") ? ZI_BF16 : ZI_F32,
                      .keep_bf16 = argc > 4 && !strcmp(argv[4], "keep-bf16")};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    zi_weights *w = NULL;
    char err[1024];
    int rc = zi_weights_open(argv[1], part, &o, &w, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc) {
        fprintf(stderr, "error %d: %s\n", rc, err);
        return 1;
    }
    printf("tensors=%d bytes=%.1f MiB time=%.2f s peak_rss=%.1f MiB rss=%.1f MiB\n",
           zi_weights_count(w), (double)zi_weights_bytes(w) / (1 << 20),
           (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9, vm("VmHWM:"),
           vm("VmRSS:"));
    zi_weights_close(w);
    return 0;
}
