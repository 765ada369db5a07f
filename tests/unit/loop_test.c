/*
 * loop_test.c — the load loop against the in-process test server
 * (bench/echo) with known injected delays: closed-loop and open-loop pacing,
 * error classes, the stall that only the open loop exposes, and user counts
 * across sweep stages. Durations are a few seconds; the bounds are wide
 * because they are correctness checks, not speed claims.
 */
#include "bench/echo.h"
#include "bench/loop.h"
#include "core/clock.h"
#include "core/err.h"
#include "harness.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <time.h>

static const char GET[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static pb_request get_req = {(const uint8_t *)GET, sizeof GET - 1, NULL, 0, 0, 0, 0};

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static pb_echo *echo(const char *delay, int64_t stall_at, int64_t stall_len)
{
    pb_echo_config ec = {0};
    char err[256];
    T_EQ_INT(pb_parse_delay(delay, &ec.delay, err, sizeof err), 0);
    ec.stall_at_ns = stall_at;
    ec.stall_ns = stall_len;
    ec.seed = 5;
    pb_echo *e = NULL;
    int rc = pb_echo_start(&ec, &e, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "%s", err);
    return e;
}

static pb_loop_config base_cfg(int port)
{
    pb_loop_config c = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&c.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    c.addrlen = sizeof *a;
    c.threads = 2;
    c.max_users = 8;
    c.connections = 64;
    c.timeout_ns = 5000000000LL;
    c.reqs = &get_req;
    c.nreqs = 1;
    c.status_lo = 200;
    c.status_hi = 299;
    c.seed = 1;
    return c;
}

/* Runs load `target` and measures [t0 + warm, t0 + warm + dur). Returns
 * the window's real length in seconds: a loaded machine oversleeps, so
 * counts are held to the window they were taken over. */
static double run(const pb_loop_config *c, double target, int64_t warm, int64_t dur, pb_acc *out)
{
    pb_loop *e;
    char err[256];
    T_EQ_INT(pb_loop_start(c, &e, err, sizeof err), 0);
    int64_t t0 = px_now_ns();
    pb_loop_open_window(e, t0 + warm);
    pb_loop_set_load(e, target, 0);
    sleep_ns(warm + dur);
    pb_acc_init(out);
    pb_loop_close_window(e, out);
    double len = (double)(px_now_ns() - (t0 + warm)) / 1e9;
    pb_loop_stop(e);
    return len;
}

/* Waits (bounded) until the loop has n users: a new load is applied by the
 * loop's threads, and a stopping user leaves when its request ends. */
static int wait_active(pb_loop *e, int n)
{
    for (int i = 0; i < 10000 && pb_loop_active(e) != n; i++) sleep_ns(1000000);
    return pb_loop_active(e);
}

TEST(t_closed_loop_no_think)
{
    pb_echo *s = echo("2ms", 0, 0);
    pb_loop_config c = base_cfg(pb_echo_port(s));
    pb_acc a;
    double len = run(&c, 4, 200000000, 1500000000, &a);
    /* 4 users x 1.5 s / 2 ms = 3000 at most (each user one more at the edge) */
    printf("    closed loop, 4 users, 2 ms server: %llu ok in %.2f s, p50 %.2f ms\n",
           (unsigned long long)a.ok, len, px_hist_quantile(&a.lat, 0.5) / 1e6);
    T_EQ_INT(pb_acc_errors(&a), 0);
    T_CMP_INT(a.ok, <=, (uint64_t)(4 * (len / 0.002 + 1)));
    T_CMP_INT(a.ok, >=, 600);
    T_CMP_DBL(px_hist_quantile(&a.lat, 0.5), >=, 2e6);
    /* the echo server's Server-Timing was parsed */
    T_EQ_INT(a.nst, 1);
    T_EQ_STR(a.st_name[0], "wait");
    T_EQ_INT(a.st[0]->count, a.ok);
    pb_acc_free(&a);
    pb_echo_stop(s);
}

TEST(t_closed_loop_think_time)
{
    pb_echo *s = echo("0", 0, 0);
    pb_loop_config c = base_cfg(pb_echo_port(s));
    c.think_lo = 100000000; /* between(0.1 s, 0.3 s) */
    c.think_hi = 300000000;
    pb_acc a;
    double len = run(&c, 5, 300000000, 2000000000, &a);
    /* 5 users / 0.2 s mean think = 25 requests per second: 50 in 2 s */
    printf("    closed loop, 5 users thinking 0.1-0.3 s: %llu requests in %.2f s\n",
           (unsigned long long)a.ok, len);
    T_CMP_INT(a.ok, >=, 30);
    T_CMP_INT(a.ok, <=, (uint64_t)(35 * len));
    T_EQ_INT(pb_acc_errors(&a), 0);
    pb_acc_free(&a);
    pb_echo_stop(s);
}

TEST(t_open_loop_rate)
{
    pb_echo *s = echo("1ms", 0, 0);
    pb_loop_config c = base_cfg(pb_echo_port(s));
    c.open_loop = 1;
    pb_acc a;
    double len = run(&c, 500, 200000000, 2000000000, &a);
    printf("    open loop at 500/s for 2 s: %llu ok in %.2f s, %llu late\n",
           (unsigned long long)a.ok, len, (unsigned long long)a.late);
    T_CMP_INT(a.ok, >=, 900);
    T_CMP_INT(a.ok, <=, (uint64_t)(550 * len));
    T_EQ_INT(pb_acc_errors(&a), 0);
    /* Poisson arrivals average the same rate */
    c.poisson = 1;
    pb_acc p;
    len = run(&c, 500, 200000000, 2000000000, &p);
    printf("    open loop, Poisson at 500/s for 2 s: %llu ok in %.2f s\n", (unsigned long long)p.ok,
           len);
    T_CMP_INT(p.ok, >=, 800);
    T_CMP_INT(p.ok, <=, (uint64_t)(600 * len));
    pb_acc_free(&a);
    pb_acc_free(&p);
    pb_echo_stop(s);
}

TEST(t_open_loop_exposes_stall)
{
    /* The server answers in 2 ms but stalls for 1 s, 1 s after it starts.
     * A closed-loop user waits through the stall and records it once; the
     * open loop records every request that was due during it. */
    int64_t ms = 1000000;
    pb_echo *s1 = echo("2ms", 1000 * ms, 1000 * ms);
    pb_loop_config c = base_cfg(pb_echo_port(s1));
    c.threads = 1;
    pb_acc closed;
    run(&c, 1, 300 * ms, 2700 * ms, &closed);
    pb_echo_stop(s1);

    pb_echo *s2 = echo("2ms", 1000 * ms, 1000 * ms);
    c = base_cfg(pb_echo_port(s2));
    c.threads = 1;
    c.open_loop = 1;
    c.connections = 4; /* fewer than the stall holds: the rest wait, and count */
    pb_acc open;
    run(&c, 200, 300 * ms, 2700 * ms, &open);
    pb_echo_stop(s2);

    double cp50 = px_hist_quantile(&closed.lat, 0.5) / 1e6,
           cp90 = px_hist_quantile(&closed.lat, 0.9) / 1e6,
           cp99 = px_hist_quantile(&closed.lat, 0.99) / 1e6, cmax = closed.lat.max / 1e6;
    double op50 = px_hist_quantile(&open.lat, 0.5) / 1e6,
           op90 = px_hist_quantile(&open.lat, 0.9) / 1e6,
           op99 = px_hist_quantile(&open.lat, 0.99) / 1e6, omax = open.lat.max / 1e6;
    printf("    closed: n=%llu p50 %.1f p90 %.1f p99 %.1f max %.0f ms\n",
           (unsigned long long)closed.ok, cp50, cp90, cp99, cmax);
    printf("    open:   n=%llu p50 %.1f p90 %.1f p99 %.1f max %.0f ms, late %llu\n",
           (unsigned long long)open.ok, op50, op90, op99, omax, (unsigned long long)open.late);
    T_CMP_DBL(cmax, >=, 500);  /* the closed loop did meet the stall... */
    T_CMP_DBL(cp90, <, 100);   /* ...but it hides in one sample */
    T_CMP_DBL(op90, >=, 300);  /* the open loop shows it in a fifth of the requests */
    T_CMP_INT(open.late, >=, 100);
    T_EQ_INT(pb_acc_errors(&open), 0);
    pb_acc_free(&closed);
    pb_acc_free(&open);
}

TEST(t_error_classes)
{
    int64_t ms = 1000000;
    /* nothing listening: connect errors (find a free port by binding one) */
    pb_echo *gone = echo("0", 0, 0);
    int port = pb_echo_port(gone);
    pb_echo_stop(gone);
    pb_loop_config c = base_cfg(port);
    pb_acc a;
    run(&c, 2, 0, 300 * ms, &a);
    T_CMP_INT(a.err[PB_ERR_CONNECT], >=, 2);
    T_EQ_INT(a.ok, 0);
    pb_acc_free(&a);

    /* unexpected status */
    pb_echo *s = echo("0", 0, 0);
    c = base_cfg(pb_echo_port(s));
    c.status_lo = c.status_hi = 201;
    run(&c, 2, 0, 300 * ms, &a);
    T_CMP_INT(a.err[PB_ERR_STATUS], >=, 10);
    T_EQ_INT(a.ok, 0);
    pb_acc_free(&a);
    pb_echo_stop(s);

    /* timeouts: replies take 400 ms, the limit is 50 ms */
    s = echo("400ms", 0, 0);
    c = base_cfg(pb_echo_port(s));
    c.timeout_ns = 50 * ms;
    run(&c, 2, 0, 500 * ms, &a);
    T_CMP_INT(a.err[PB_ERR_TIMEOUT], >=, 2);
    T_EQ_INT(a.ok, 0);
    pb_acc_free(&a);

    /* open loop with one connection busy 200 ms per request at 50/s: most
     * arrivals wait past max-wait and are dropped */
    c = base_cfg(pb_echo_port(s));
    c.open_loop = 1;
    c.connections = 1;
    c.threads = 1;
    c.max_wait_ns = 50 * ms;
    run(&c, 50, 0, 1000 * ms, &a);
    printf("    open loop, 1 busy connection: %llu ok, %llu dropped\n", (unsigned long long)a.ok,
           (unsigned long long)a.err[PB_ERR_DROPPED]);
    T_CMP_INT(a.err[PB_ERR_DROPPED], >=, 20);
    T_CMP_INT(a.ok, <=, 4);
    pb_acc_free(&a);
    pb_echo_stop(s);
}

TEST(t_sweep_user_counts)
{
    pb_echo *s = echo("1ms", 0, 0);
    pb_loop_config c = base_cfg(pb_echo_port(s));
    c.max_users = 6;
    c.think_lo = c.think_hi = 10000000;
    pb_loop *e;
    char err[256];
    T_EQ_INT(pb_loop_start(&c, &e, err, sizeof err), 0);
    pb_loop_set_load(e, 6, 0);
    T_EQ_INT(wait_active(e, 6), 6);
    sleep_ns(200000000);
    T_EQ_INT(pb_loop_active(e), 6); /* and it stays there */
    pb_loop_set_load(e, 2, 0);
    T_EQ_INT(wait_active(e, 2), 2);
    pb_loop_set_load(e, 5, 0);
    T_EQ_INT(wait_active(e, 5), 5);
    sleep_ns(200000000);
    pb_acc a;
    pb_acc_init(&a);
    pb_loop_take_interval(e, &a);
    T_CMP_INT(a.ok, >=, 20);
    pb_acc_free(&a);
    pb_loop_stop(e);
    pb_echo_stop(s);
}

TEST(t_spawn_rate)
{
    pb_echo *s = echo("0", 0, 0);
    pb_loop_config c = base_cfg(pb_echo_port(s));
    c.max_users = 8;
    c.spawn_rate = 10; /* one user every 100 ms */
    c.think_lo = c.think_hi = 50000000;
    pb_loop *e;
    char err[256];
    T_EQ_INT(pb_loop_start(&c, &e, err, sizeof err), 0);
    int64_t t0 = px_now_ns();
    pb_loop_set_load(e, 8, 0);
    sleep_ns(350000000);
    /* users are counted from the moment they are scheduled to spawn; their
     * first requests are what the rate spaces out */
    pb_acc a;
    pb_acc_init(&a);
    pb_loop_take_interval(e, &a);
    /* user k starts no sooner than 100k ms in, then sends at most one
     * request per 50 ms think: at 350 ms, 4 users and 8+6+4+2 requests
     * (however long a loaded machine actually slept) */
    double el = (double)(px_now_ns() - t0) / 1e6;
    uint64_t most = 0;
    for (int k = 0; k < 8 && 100.0 * k <= el; k++) most += (uint64_t)((el - 100.0 * k) / 50) + 1;
    printf("    %llu requests in %.0f ms (at most %llu)\n", (unsigned long long)a.ok, el,
           (unsigned long long)most);
    T_CMP_INT(a.ok, <=, most);
    T_CMP_INT(a.ok, >=, 3);
    pb_acc_free(&a);
    pb_loop_stop(e);
    pb_echo_stop(s);
}

TEST_MAIN(t_closed_loop_no_think, t_closed_loop_think_time, t_open_loop_rate,
          t_open_loop_exposes_stall, t_error_classes, t_sweep_user_counts, t_spawn_rate)
