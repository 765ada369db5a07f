/*
 * serve_parts_test.c — the service's smaller pieces: configuration parsing,
 * the outputs directory (unique names, no escape from the directory) and
 * the Prometheus rendering of metrics.
 */
#include "core/buf.h"
#include "core/err.h"
#include "harness.h"
#include "serve/config.h"
#include "serve/metrics.h"
#include "serve/outputs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(t_parse_sizes_durations_pixels)
{
    uint64_t u;
    int64_t ms;
    T_EQ_INT(px_parse_size("64M", &u), 0);
    T_EQ_INT(u, 64ull << 20);
    T_EQ_INT(px_parse_size("1.5k", &u), 0);
    T_EQ_INT(u, 1536);
    T_EQ_INT(px_parse_size("100", &u), 0);
    T_EQ_INT(u, 100);
    T_EQ_INT(px_parse_size("2GB", &u), 0);
    T_EQ_INT(u, 2ull << 30);
    T_EQ_INT(px_parse_size("-1", &u), PX_EINVAL);
    T_EQ_INT(px_parse_size("12Q", &u), PX_EINVAL);
    T_EQ_INT(px_parse_size("", &u), PX_EINVAL);
    T_EQ_INT(px_parse_duration_ms("500ms", &ms), 0);
    T_EQ_INT(ms, 500);
    T_EQ_INT(px_parse_duration_ms("1.5", &ms), 0);
    T_EQ_INT(ms, 1500);
    T_EQ_INT(px_parse_duration_ms("2m", &ms), 0);
    T_EQ_INT(ms, 120000);
    T_EQ_INT(px_parse_duration_ms("1h", &ms), 0);
    T_EQ_INT(ms, 3600000);
    T_EQ_INT(px_parse_duration_ms("5 s", &ms), PX_EINVAL);
    T_EQ_INT(px_parse_duration_ms("soon", &ms), PX_EINVAL);
    T_EQ_INT(px_parse_pixels("4096x4096", &u), 0);
    T_EQ_INT(u, 4096ull * 4096);
    T_EQ_INT(px_parse_pixels("16.8M", &u), 0);
    T_EQ_INT(u, 16800000);
    T_EQ_INT(px_parse_pixels("0x5", &u), PX_EINVAL);
    T_EQ_INT(px_parse_pixels("many", &u), PX_EINVAL);
}

TEST(t_config_flags)
{
    px_serve_config c;
    px_config_defaults(&c);
    T_EQ_INT(c.port, 7860);
    T_EQ_STR(c.host, "127.0.0.1");
    T_EQ_INT(c.timeout_ms, 60000);
    /* The queues are safety bounds sized from memory (admit.h), not 32/64. */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    double want = (double)pages * (double)page / 8 / (4 << 20);
    int bound = px_config_queue_bound();
    T_TRUE(bound >= 256 && bound <= 4096);
    T_TRUE(want < 256 ? bound == 256 : want > 4096 ? bound == 4096 : bound == (int)want);
    T_EQ_INT(c.queue, bound);
    T_EQ_INT(c.cpu_queue, bound);
    T_EQ_INT(c.hd.crop_bucket, -1); /* per engine */
    char *argv[] = {"--port", "0", "--workers=3", "--queue", "5", "--timeout", "250ms",
                    "--max-body", "1M", "--engine", "classic", "--max-pixels", "1000x1000"};
    char err[200];
    T_EQ_INT(px_config_parse_args(&c, 13, argv, err, sizeof err), 0);
    T_EQ_INT(c.port, 0);
    T_EQ_INT(c.workers, 3);
    T_EQ_INT(c.queue, 5);
    T_EQ_INT(c.timeout_ms, 250);
    T_EQ_INT(c.max_body, 1 << 20);
    T_EQ_INT(c.max_pixels, 1000000);
    T_EQ_INT(c.nengines, 1);
    T_EQ_STR(c.engines[0].name, "classic");
    T_TRUE(c.engines[0].weights == NULL);
    px_config_free(&c);

    px_config_defaults(&c);
    T_EQ_INT(px_config_parse_args(&c, 0, NULL, err, sizeof err), 0);
    T_EQ_INT(c.nengines, 1); /* default engine filled in */
    char *bad1[] = {"--port", "70000"};
    T_EQ_INT(px_config_parse_args(&c, 2, bad1, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "--port");
    char *bad2[] = {"--frobnicate", "1"};
    T_EQ_INT(px_config_parse_args(&c, 2, bad2, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "unknown flag");
    char *bad3[] = {"--workers"};
    T_EQ_INT(px_config_parse_args(&c, 1, bad3, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "needs a value");
    char *bad4[] = {"stray"};
    T_EQ_INT(px_config_parse_args(&c, 1, bad4, err, sizeof err), PX_EINVAL);
    char *bad5[] = {"--workers", "0"};
    T_EQ_INT(px_config_parse_args(&c, 2, bad5, err, sizeof err), PX_EINVAL);

    /* GPU placement and warm-up sizes */
    px_config_defaults(&c);
    T_EQ_INT(c.workers, 0); /* 0: one per GPU the engine drives, 1 on the CPU */
    char *gpu[] = {"--device", "cuda:0,1", "--precision", "fp32", "--warm-sizes", "1024x1024,512x768"};
    T_EQ_INT(px_config_parse_args(&c, 6, gpu, err, sizeof err), 0);
    T_EQ_STR(c.device, "cuda:0,1");
    T_EQ_STR(c.precision, "fp32");
    int w[8], h[8];
    T_EQ_INT(px_config_warm_sizes(c.warm_sizes, w, h, 8), 2);
    T_EQ_INT(w[1], 512);
    T_EQ_INT(h[1], 768);
    const char *bad_sizes[] = {"", "1024", "1024x", "1024x1024,", "4x4", "1024x1024;512x512",
                               "99999x10", "8x8,8x8,8x8,8x8,8x8,8x8,8x8,8x8,8x8"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        char *one[] = {"--warm-sizes", (char *)bad_sizes[i]};
        T_EQ_INT(px_config_parse_args(&c, 2, one, err, sizeof err), PX_EINVAL);
        T_CONTAINS(err, "warm-sizes");
    }
    px_config_free(&c);

    /* LoRAs: off by default, 1 GiB of cache. */
    px_config_defaults(&c);
    T_TRUE(c.lora_dir == NULL);
    T_EQ_INT(c.lora_cache_bytes, 1 << 30);
    char *lora[] = {"--lora-dir", "/srv/loras", "--lora-cache-mb", "300"};
    T_EQ_INT(px_config_parse_args(&c, 4, lora, err, sizeof err), 0);
    T_EQ_STR(c.lora_dir, "/srv/loras");
    T_EQ_INT(c.lora_cache_bytes, 300ull << 20);
    char *lora_bad[] = {"--lora-cache-mb", "-1"};
    T_EQ_INT(px_config_parse_args(&c, 2, lora_bad, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "lora-cache-mb");
    px_config_free(&c);
}

TEST(t_engine_settings)
{
    /* Each engine its own weights/model, device and precision, next to
     * the old global spellings. */
    px_serve_config c;
    px_config_defaults(&c);
    char *argv[] = {"--engine", "lama:weights=/w/big-lama.safetensors,device=cuda:0,1,precision=fp32",
                    "--engine=zimage:model=/m/z-image,device=cuda:1", "--engine", "classic",
                    "--weights", "F", "--device", "cuda"};
    char err[300];
    T_EQ_INT(px_config_parse_args(&c, 9, argv, err, sizeof err), 0);
    T_EQ_INT(c.nengines, 3);
    T_EQ_STR(c.engines[0].name, "lama");
    T_EQ_STR(c.engines[0].weights, "/w/big-lama.safetensors");
    T_EQ_STR(c.engines[0].device, "cuda:0,1");
    T_EQ_STR(c.engines[0].precision, "fp32");
    T_EQ_STR(c.engines[1].name, "zimage");
    T_EQ_STR(c.engines[1].weights, "/m/z-image");
    T_EQ_STR(c.engines[1].device, "cuda:1");
    T_TRUE(c.engines[1].precision == NULL);
    T_EQ_STR(c.engines[2].name, "classic");
    T_TRUE(c.engines[2].device == NULL);
    T_EQ_STR(c.weights, "F");
    T_EQ_STR(c.device, "cuda");
    px_config_free(&c);
    const char *bad[] = {"lama:", "lama:weights", "lama:weights=", ":device=cpu",
                         "lama:colour=blue", "lama:a,b=c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        px_config_defaults(&c);
        char *one[] = {"--engine", (char *)bad[i]};
        int rc = px_config_parse_args(&c, 2, one, err, sizeof err);
        px_config_free(&c);
        if (!strcmp(bad[i], "lama:")) { /* a bare colon is just the name */
            T_EQ_INT(rc, 0);
            continue;
        }
        T_EQ_INT(rc, PX_EINVAL);
        T_CONTAINS(err, "--engine");
        if (!strcmp(bad[i], "lama:colour=blue")) T_CONTAINS(err, "unknown key 'colour'");
    }
}

TEST(t_outputs_save_and_open)
{
    const char *dir = px_test_tmpdir();
    char sub[256];
    snprintf(sub, sizeof sub, "%s/out", dir); /* created on open */
    px_outputs *o;
    char err[200], n1[PX_OUTPUT_NAME_MAX], n2[PX_OUTPUT_NAME_MAX];
    T_EQ_INT(px_outputs_open(sub, &o, err, sizeof err), 0);
    T_EQ_INT(px_outputs_save(o, "hello", 5, "png", n1, err, sizeof err), 0);
    T_EQ_INT(px_outputs_save(o, "world!", 6, "png", n2, err, sizeof err), 0);
    T_TRUE(strcmp(n1, n2) != 0);
    T_TRUE(px_outputs_name_ok(n1));
    T_TRUE(strstr(n1, ".png") != NULL);
    uint64_t size;
    int fd = px_outputs_open_file(o, n2, &size);
    T_CMP_INT(fd, >=, 0);
    T_EQ_INT(size, 6);
    char buf[8] = {0};
    T_EQ_INT(read(fd, buf, 8), 6);
    T_EQ_STR(buf, "world!");
    close(fd);
    T_EQ_INT(px_outputs_open_file(o, "0-0000000000000000.png", &size), PX_ENOTFOUND);
    px_outputs_close(o);
    /* reopening an existing directory works */
    T_EQ_INT(px_outputs_open(sub, &o, err, sizeof err), 0);
    px_outputs_close(o);
    T_EQ_INT(px_outputs_open("/proc/nope/x", &o, err, sizeof err), PX_EIO);
    T_CONTAINS(err, "/proc/nope/x");
}

TEST(t_outputs_refuse_escapes)
{
    const char *dir = px_test_tmpdir();
    px_outputs *o;
    char err[200];
    T_EQ_INT(px_outputs_open(dir, &o, err, sizeof err), 0);
    const char *bad[] = {"../x.png", "..", ".", "a/b.png", "/etc/passwd", ".hidden", "a.b.c",
                         "x.", "", "a%2fb.png", "name with space.png", "a\\b.png",
                         "0123456789012345678901234567890123456789012345678901234567890123.png"};
    uint64_t size;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_TRUE(!px_outputs_name_ok(bad[i]));
        T_EQ_INT(px_outputs_open_file(o, bad[i], &size), PX_EINVAL);
    }
    /* a symlink planted in the directory is not followed */
    char link[300];
    snprintf(link, sizeof link, "%s/evil.png", dir);
    T_EQ_INT(symlink("/etc/hostname", link), 0);
    T_EQ_INT(px_outputs_open_file(o, "evil.png", &size), PX_ENOTFOUND);
    /* nor is a directory served */
    snprintf(link, sizeof link, "%s/sub.png", dir);
    T_EQ_INT(mkdir(link, 0755), 0);
    T_EQ_INT(px_outputs_open_file(o, "sub.png", &size), PX_ENOTFOUND);
    px_outputs_close(o);
}

TEST(t_metrics_render)
{
    px_metrics *m = px_metrics_new();
    px_metrics_request(m, PX_ROUTE_INPAINT_V1, 200, 0.2);
    px_metrics_request(m, PX_ROUTE_INPAINT_V1, 200, 3.0);
    px_metrics_request(m, PX_ROUTE_INPAINT_V1, 429, 0.001);
    px_metrics_request(m, PX_ROUTE_HEALTHZ, 200, 0.0001);
    px_metrics_request(m, (enum px_route)99, 999, 1); /* clamped, not out of bounds */
    const char *const gen_stages[PX_STAGE_COUNT] = {NULL, "prepare", NULL, "encode"};
    px_metrics_set_kind(m, 0, "inpaint", NULL);
    px_metrics_set_kind(m, 1, "generate", gen_stages);
    px_metrics_stage(m, 0, PX_STAGE_INFER, 0.7);
    px_metrics_stage(m, 1, PX_STAGE_DECODE, 0.01);
    px_metrics_stage(m, 7, PX_STAGE_QUEUE, 0.01); /* an unnamed kind counts as kind 0 */
    px_metrics_error(m, PX_EBUSY);
    for (int i = 0; i < 7; i++) px_metrics_outcome(m, 0, PX_OUTCOME_COMPLETED);
    px_metrics_outcome(m, 0, PX_OUTCOME_REJECTED);
    px_metrics_outcome(m, 1, PX_OUTCOME_CANCELLED);
    px_metrics_outcome(m, 0, (enum px_outcome)99); /* ignored */
    px_metrics_error(m, -12345);
    T_EQ_INT(px_metrics_request_count(m, PX_ROUTE_INPAINT_V1, 200), 2);
    T_EQ_INT(px_metrics_request_count(m, PX_ROUTE_OTHER, 500), 1);
    px_metrics_gauges g = {.queue_depth = 3, .queue_capacity = 16, .inflight = 2, .workers = 2,
                           .ready = 1, .uptime_s = 1.5, .rss_bytes = 1000};
    px_gpu_info gpu = {.index = 0, .mem_total = 1000, .mem_used = 250, .util_gpu = 87};
    g.gpus = &gpu;
    g.ngpus = 1;
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_metrics_render(m, &g, &b), 0);
    const char *t = (const char *)b.data;
    T_CONTAINS(t, "pixserve_gpu_utilization_ratio{device=\"0\"} 0.87\n");
    T_CONTAINS(t, "pixserve_gpu_memory_used_bytes{device=\"0\"} 250\n");
    T_CONTAINS(t, "pixserve_gpu_memory_total_bytes{device=\"0\"} 1000\n");
    T_CONTAINS(t, "pixserve_requests_total{route=\"/api/v1/inpaint\",status=\"200\"} 2\n");
    T_CONTAINS(t, "pixserve_requests_total{route=\"/api/v1/inpaint\",status=\"429\"} 1\n");
    T_CONTAINS(t, "pixserve_requests_total{route=\"other\",status=\"500\"} 1\n");
    /* cumulative buckets: 0.2 s falls in le=0.25, 3 s in le=5 */
    T_CONTAINS(t, "pixserve_request_duration_seconds_bucket{route=\"/api/v1/inpaint\",le=\"0.1\"} 1\n");
    T_CONTAINS(t, "pixserve_request_duration_seconds_bucket{route=\"/api/v1/inpaint\",le=\"0.25\"} 2\n");
    T_CONTAINS(t, "pixserve_request_duration_seconds_bucket{route=\"/api/v1/inpaint\",le=\"5\"} 3\n");
    T_CONTAINS(t, "pixserve_request_duration_seconds_bucket{route=\"/api/v1/inpaint\",le=\"+Inf\"} 3\n");
    T_CONTAINS(t, "pixserve_request_duration_seconds_count{route=\"/api/v1/inpaint\"} 3\n");
    T_CONTAINS(t, "pixserve_request_duration_seconds_sum{route=\"/api/v1/inpaint\"} 3.201000\n");
    T_CONTAINS(t, "pixserve_stage_duration_seconds_count{kind=\"inpaint\",stage=\"infer\"} 1\n");
    T_CONTAINS(t, "pixserve_stage_duration_seconds_count{kind=\"inpaint\",stage=\"queue\"} 1\n");
    T_CONTAINS(t, "pixserve_stage_duration_seconds_count{kind=\"generate\",stage=\"prepare\"} 1\n");
    T_CONTAINS(t, "pixserve_stage_duration_seconds_count{kind=\"generate\",stage=\"infer\"} 0\n");
    T_CONTAINS(t, "pixserve_errors_total{code=\"busy\"} 1\n");
    T_CONTAINS(t, "pixserve_errors_total{code=\"internal\"} 1\n");
    T_CONTAINS(t, "pixserve_queue_depth 3\n");
    T_CONTAINS(t, "pixserve_inflight 2\n");
    T_CONTAINS(t, "pixserve_jobs_total{kind=\"inpaint\",outcome=\"completed\"} 7\n");
    T_CONTAINS(t, "pixserve_jobs_total{kind=\"inpaint\",outcome=\"rejected\"} 1\n");
    T_CONTAINS(t, "pixserve_jobs_total{kind=\"inpaint\",outcome=\"timeout\"} 0\n");
    T_CONTAINS(t, "pixserve_jobs_total{kind=\"generate\",outcome=\"cancelled\"} 1\n");
    T_CONTAINS(t, "pixserve_jobs_total{kind=\"generate\",outcome=\"completed\"} 0\n");
    T_CONTAINS(t, "# TYPE pixserve_request_duration_seconds histogram\n");
    px_buf_free(&b);
    px_metrics_free(m);
}

TEST_MAIN(t_engine_settings, t_parse_sizes_durations_pixels, t_config_flags, t_outputs_save_and_open,
          t_outputs_refuse_escapes, t_metrics_render)
