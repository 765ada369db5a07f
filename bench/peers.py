#!/usr/bin/python3
"""pixbench against its peers (wrk, hey, Locust) in one run, on this machine.

Usage: bench/peers.py [--build build/release] [--seconds 10] [--repeats 3]
                      [--connections 50] [--big N] [--skip-big] [--out FILE.json]

Three parts, each against `pixbench echo` (a trivial epoll keep-alive
endpoint: 13-byte reply, no delay unless asked) started here:

1. throughput: every tool with 1 thread (hey: GOMAXPROCS=1; Locust: one
   process) and the same number of connections, closed loop with no think
   time, for --seconds, --repeats times in interleaved order; the server is
   pinned to CPU 0 and the client to CPU 1 so each has one core. Reports
   median requests/s, CPU (user+sys) per request and peak RSS.
2. memory after many requests: pixbench and wrk run --big requests (default
   10 million); hey keeps every result in memory, so it runs 1/5 of that;
   Locust runs 60 s (10 million would take hours at its rate).
3. accuracy: the server delays each reply by uniform(10 ms, 50 ms) (known
   percentiles p50 30, p90 46, p99 49.6 ms, plus loopback overhead); each tool
   reports its p50/p90/p99 at 10 connections for --seconds.

Prints a Markdown table of each part and writes everything as JSON.
"""
import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def start_echo(pixbench, *flags):
    p = subprocess.Popen(["taskset", "-c", "0", pixbench, "echo", "--port", "0", *flags],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = re.search(r":(\d+)$", p.stdout.readline().strip())
    return p, int(m.group(1))


def run_measured(cmd, env=None, cpu="1"):
    """Runs cmd pinned to one CPU; returns (stdout, wall s, cpu s, peak RSS MiB, rss samples)."""
    t0 = time.time()
    p = subprocess.Popen(["taskset", "-c", cpu, *cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    samples = []

    def sample():
        while p.poll() is None:
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            samples.append((time.time() - t0, int(line.split()[1]) / 1024))
            except OSError:
                pass
            time.sleep(1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    return out, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, samples


def locustfile(tmp):
    path = os.path.join(tmp, "locustfile.py")
    with open(path, "w") as f:
        f.write("from locust import HttpUser, task\n"
                "class U(HttpUser):\n"
                "    @task\n"
                "    def get(self):\n"
                "        self.client.get('/')\n")
    return path


def tool_cmd(tool, port, conns, seconds=None, requests=None, tmp=None, pixbench=None, out=None):
    url = "http://127.0.0.1:%d/" % port
    if tool == "pixbench":
        c = [pixbench, "--target", url.rstrip("/"), "--profile", "raw", "--users", str(conns),
             "--threads", "1", "--check", "none", "--no-progress", "-q", "--timeout", "60s"]
        c += ["--requests", str(requests), "--duration", "1h"] if requests else ["--duration", "%ds" % seconds]
        if out:
            c += ["--out", out]
        return c, None
    if tool == "wrk":
        if requests:  # wrk has no request bound: run long enough, count what it did
            seconds = requests
        return ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency", url], None
    if tool == "hey":
        env = dict(os.environ, GOMAXPROCS="1")
        c = ["hey", "-c", str(conns)] + (["-n", str(requests)] if requests else ["-z", "%ds" % seconds])
        return c + [url], env
    if tool == "locust":
        return ["locust", "-f", locustfile(tmp), "--headless", "-u", str(conns), "-r", str(conns),
                "-t", "%ds" % seconds, "-H", url.rstrip("/"), "--csv", os.path.join(tmp, "l"),
                "--only-summary", "--loglevel", "ERROR"], None
    raise ValueError(tool)


def parse(tool, out, tmp=None, outdir=None):
    """(requests, p50, p90, p99 in ms) from each tool's own output."""
    if tool == "pixbench":
        with open(os.path.join(outdir, "report.json")) as f:
            st = json.load(f)["stages"][0]
        lat = st["latency_ms"]
        return st["requests"], lat["p50"], lat["p90"], lat["p99"]
    if tool == "wrk":
        n = int(re.search(r"(\d+) requests in", out).group(1))
        def pct(p):
            m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
            v = float(m.group(1))
            return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
        return n, pct(50), pct(90), pct(99)
    if tool == "hey":
        n = sum(int(x) for x in re.findall(r"\[\d{3}\]\s+(\d+) responses", out))
        def pct(p):
            m = re.search(r"%d%% in ([\d.]+) secs" % p, out)
            return float(m.group(1)) * 1000 if m else float("nan")
        return n, pct(50), pct(90), pct(99)
    if tool == "locust":
        with open(os.path.join(tmp, "l_stats.csv")) as f:
            rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
        r = rows[0]
        return int(r["Request Count"]), float(r["50%"]), float(r["90%"]), float(r["99%"])
    raise ValueError(tool)


def one(tool, port, conns, args, seconds=None, requests=None):
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        outdir = os.path.join(tmp, "pb")
        cmd, env = tool_cmd(tool, port, conns, seconds, requests, tmp, args.pixbench, outdir)
        out, wall, cpu, rss, samples = run_measured(cmd, env)
        n, p50, p90, p99 = parse(tool, out, tmp, outdir)
        run_s = wall if tool != "locust" else seconds  # locust's start-up is not load
        return {"tool": tool, "requests": n, "wall_s": wall, "rps": n / (seconds or wall),
                "cpu_s": cpu, "cpu_us_per_req": 1e6 * cpu / max(n, 1), "peak_rss_mib": rss,
                "rss_samples": samples, "p50": p50, "p90": p90, "p99": p99, "cmd": " ".join(cmd),
                "run_s": run_s}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--big", type=int, default=10_000_000)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--out", default="peers.json")
    args = ap.parse_args()
    args.pixbench = os.path.join(args.build, "pixbench")
    tools = ["pixbench", "wrk", "hey", "locust"]
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "uptime_before": open("/proc/loadavg").read().strip()}

    echo, port = start_echo(args.pixbench)
    runs = {t: [] for t in tools}
    for rep in range(args.repeats):
        for t in tools:
            r = one(t, port, args.connections, args, seconds=args.seconds)
            runs[t].append(r)
            print("run %d %-8s %9.0f req/s %6.2f us CPU/req  %6.1f MiB" %
                  (rep + 1, t, r["rps"], r["cpu_us_per_req"], r["peak_rss_mib"]), file=sys.stderr)
    result["throughput"] = runs
    print("\n## Throughput (1 thread, %d connections, %d s, median of %d)\n" %
          (args.connections, args.seconds, args.repeats))
    print("| tool | requests/s | CPU µs/request | peak RSS MiB | pixbench ÷ tool (rate) |")
    print("|---|---:|---:|---:|---:|")
    med = {t: statistics.median(r["rps"] for r in runs[t]) for t in tools}
    for t in tools:
        print("| %s | %.0f | %.2f | %.1f | %.2fx |" % (
            t, med[t], statistics.median(r["cpu_us_per_req"] for r in runs[t]),
            statistics.median(r["peak_rss_mib"] for r in runs[t]), med["pixbench"] / med[t]))
    echo.terminate()
    echo.wait()

    if not args.skip_big:
        echo, port = start_echo(args.pixbench)
        big = {}
        rate_wrk = med["wrk"]
        big["pixbench"] = one("pixbench", port, args.connections, args, requests=args.big)
        big["wrk"] = one("wrk", port, args.connections, args, requests=max(10, int(args.big / rate_wrk) + 1))
        big["hey"] = one("hey", port, args.connections, args, requests=args.big // 5)
        big["locust"] = one("locust", port, args.connections, args, seconds=60)
        echo.terminate()
        echo.wait()
        result["memory"] = big
        print("\n## Memory over a long run\n")
        print("| tool | requests | RSS after 10 s (MiB) | RSS at the end (MiB) | peak RSS (MiB) |")
        print("|---|---:|---:|---:|---:|")
        for t in tools:
            r = big[t]
            s = r["rss_samples"]
            early = next((m for ts, m in s if ts >= 10), s[0][1] if s else 0)
            print("| %s | %d | %.1f | %.1f | %.1f |" % (t, r["requests"], early, s[-1][1] if s else 0,
                                                     r["peak_rss_mib"]))

    echo, port = start_echo(args.pixbench, "--delay", "uniform:10ms:50ms")
    acc = {t: one(t, port, 10, args, seconds=args.seconds) for t in tools}
    echo.terminate()
    echo.wait()
    result["accuracy"] = acc
    print("\n## Accuracy: server delay uniform(10 ms, 50 ms), 10 connections, %d s\n" % args.seconds)
    print("| | requests | p50 ms | p90 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    print("| exact (delay only) | | 30.0 | 46.0 | 49.6 |")
    for t in tools:
        r = acc[t]
        print("| %s | %d | %.2f | %.2f | %.2f |" % (t, r["requests"], r["p50"], r["p90"], r["p99"]))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
