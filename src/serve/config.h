/*
 * config.h — pixserve's settings: defaults, command-line flags, and the
 * parsers for sizes ("64M") and durations ("500ms", "60s", "2m") they use.
 */
#ifndef PX_SERVE_CONFIG_H
#define PX_SERVE_CONFIG_H

#include "serve/hd.h"

#include <stddef.h>
#include <stdint.h>

#define PX_MAX_ENGINES 8
#define PX_VERSION "0.1.0"

/* One --engine: the registry name and the engine's own settings; NULL
 * settings fall back to --weights, --device and --precision. */
typedef struct px_engine_spec {
    const char *name;
    const char *weights;   /* weights=FILE or model=DIR */
    const char *device;    /* device=cpu|cuda|cuda:N[,M] */
    const char *precision; /* precision=fp32|tf32|bf16 */
} px_engine_spec;

typedef struct px_serve_config {
    const char *host;          /* bind address, default 127.0.0.1 */
    int port;                  /* default 7860; 0 = ephemeral */
    int workers;               /* device workers per engine; 0 = one per device (GPUs) */
    int queue;                 /* safety bound per priority, default px_config_queue_bound */
    int http_threads;          /* HTTP I/O threads, default 2 */
    int threads;               /* compute threads, default = CPUs */
    size_t max_body;           /* request body cap, default 1 GiB */
    uint64_t max_pixels;       /* default 16.8 megapixels */
    int max_side;              /* default 8192 */
    const char *outputs;       /* results directory, default ./outputs */
    int64_t timeout_ms;        /* per-request deadline, default 60 s */
    int64_t idle_timeout_s;    /* idle/slow connection cut-off, default 30 s */
    int max_connections;       /* default 1024 */
    int png_level;             /* PNG zlib level for results, default 1 */
    px_engine_spec engines[PX_MAX_ENGINES]; /* the first of each kind is its default;
                                               default "classic" */
    int nengines;
    const char *weights;       /* weights file for engines that need one (and name none) */
    const char *device;        /* "cpu", "cuda", "cuda:N[,M]"; NULL = cpu */
    const char *precision;     /* GPU precision; NULL = the engine's default */
    const char *warm_sizes;    /* "WxH,..." GPU engines plan at start; NULL = none */
    const char *log_level;     /* debug|info|warn|error */
    /* Serving core. */
    int cpu_workers;           /* decode/encode threads, default = CPUs */
    int cpu_queue;             /* safety bound on the CPU pool's queue, same default */
    int max_batch;             /* items per engine call, default 8 */
    int max_queue_delay_ms;    /* wait for a fuller batch, default 5 */
    int continuous_batching;   /* items join running batches (engines that can); default 1 */
    int bucket_step;           /* shape bucket for batching, default 64 */
    px_hd_params hd;           /* default large-image strategy */
    int max_per_client;        /* requests in flight per client, 0 = no cap */
    int64_t job_ttl_ms;        /* async results kept this long, default 10 min */
    int max_jobs;              /* async jobs kept at once, default 10000 */
    size_t memory_limit;       /* bytes for running batches, 0 = the device's free memory */
    size_t memory_reserve;     /* bytes always left free, default 256 MiB */
    uint64_t max_gen_pixels;   /* largest text-to-image output, default 2048x2048 */
    const char *lora_dir;      /* --lora-dir DIR: the LoRAs requests may use; NULL = none */
    uint64_t lora_cache_bytes; /* loaded LoRAs nobody uses kept up to this, default 1 GiB */
    /* HTTP manners and the IOPaint dialect. */
    const char *cors_origin;   /* --cors-origin ORIGIN|*; NULL = no CORS headers */
    int64_t linger_ms;         /* reading the rest of a refused body: at most this long */
    uint64_t linger_bytes;     /* ... and this many bytes (then close), default 1 GiB */
    const char *input;         /* --input FILE|DIR: IOPaint's input image or file manager */
    const char *output_dir;    /* --output-dir DIR: IOPaint's save_image target */
    const char *mask_dir;      /* --mask-dir DIR: the file manager's "mask" tab */
    /* Strings read from config files and --engine copies, owned here
     * (px_config_free). */
    char *owned[256];
    int nowned;
} px_serve_config;

/* Parses a --warm-sizes list ("1024x1024,512x512") into w[], h[] (at most
 * max pairs). Returns the count, or -1 when malformed. */
int px_config_warm_sizes(const char *s, int *w, int *h, int max);

/*
 * Parses an --engine value: NAME, or NAME:key=value,... with the keys
 * weights (or model), device and precision; a device list keeps its commas
 * ("lama:device=cuda:0,1,weights=F"). text is split in place (it must be a
 * writable copy the configuration keeps). Returns 0 or PX_EINVAL with a
 * message.
 */
int px_engine_spec_parse(char *text, px_engine_spec *spec, char *err, size_t errlen);

/* Fills cfg with the defaults. */
void px_config_defaults(px_serve_config *cfg);

/* The default --queue and --cpu-queue, sized from the machine's memory
 * (256..4096); see config.c for the arithmetic. */
int px_config_queue_bound(void);

/*
 * Parses `pixserve serve` flags from argv[0..argc) (argv[0] is the first
 * flag, not the program). Pointers into argv are stored, not copied.
 * Returns 0; 1 if --help was given (usage already printed to stdout);
 * PX_EINVAL with a message for unknown flags, missing or bad values.
 */
int px_config_parse_args(px_serve_config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Applies a config file: one setting per line, "key = value" (or "key
 * value"), keys being the flag names without "--", '#' starting a comment.
 * Used for --config FILE, applied where it appears among the flags (later
 * flags override it). depth counts nested "config" keys. Returns 0 or
 * PX_EINVAL naming the file and line.
 */
int px_config_load_file(px_serve_config *cfg, const char *path, int depth, char *err,
                        size_t errlen);

/* Frees what the configuration owns (strings from config files). */
void px_config_free(px_serve_config *cfg);

/* Prints the flag reference of `pixserve serve`. */
void px_config_usage(void);

/* "64M" -> 67108864 (suffixes K, M, G: powers of 1024; a plain number is
 * bytes). Returns 0 or PX_EINVAL. */
int px_parse_size(const char *s, uint64_t *out);

/* "500ms", "60s", "2m", "1h" or a plain number of seconds (fractions allowed)
 * -> milliseconds. Returns 0 or PX_EINVAL. */
int px_parse_duration_ms(const char *s, int64_t *out);

/* "16.8M", "4096x4096" or a plain count of pixels. Returns 0 or PX_EINVAL. */
int px_parse_pixels(const char *s, uint64_t *out);

#endif
