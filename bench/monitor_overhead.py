#!/usr/bin/python3
"""What pixbench's resource monitor costs: the CPU time of `pixbench monitor
--pid N -q` (user + system, from wait4's rusage) over a fixed wall time, at
1 s and 100 ms intervals, watching an idle pixserve (10 threads) and a
process with many threads (a Python process parked in 100 sleeping threads),
in alternation, each run repeated. Prints every run and the medians; the
numbers go into docs/benchmarks/monitor.md. Standard library only.

    /usr/bin/python3 bench/monitor_overhead.py [--seconds 60] [--repeats 3] [--build build/release]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

PARK = """
import threading, time
for _ in range(99):
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"""


def start_targets(build, tmp):
    ps = subprocess.Popen([os.path.join(build, "pixserve"), "serve", "--port", "0", "--outputs",
                           os.path.join(tmp, "outputs"), "--log-level", "warn"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = ps.stdout.readline()
    assert re.search(r"listening on http://", line), line
    park = subprocess.Popen([sys.executable, "-c", PARK], stdout=subprocess.PIPE, text=True)
    assert park.stdout.readline().strip() == "ready"
    return ps, park


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"Threads:\s+(\d+)", f.read()).group(1))


def one(build, pid, interval, seconds):
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(build, "pixbench"), "monitor", "--pid", str(pid), "--interval", interval,
                          "--duration", "%ds" % seconds, "-q"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    assert os.waitstatus_to_exitcode(status) == 0
    cpu = ru.ru_utime + ru.ru_stime
    return 100.0 * cpu / wall, cpu, wall, ru.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--build", default="build/release")
    a = ap.parse_args()
    import tempfile
    tmp = tempfile.mkdtemp(prefix="monoh-")
    ps, park = start_targets(a.build, tmp)
    targets = [("pixserve (idle, %d threads)" % threads_of(ps.pid), ps.pid),
               ("python, %d threads" % threads_of(park.pid), park.pid)]
    print("uptime:", open("/proc/loadavg").read().strip())
    res = {}
    try:
        for rep in range(a.repeats):
            for name, pid in targets:
                for iv in ("1s", "100ms"):
                    pct, cpu, wall, rss = one(a.build, pid, iv, a.seconds)
                    res.setdefault((name, iv), []).append(pct)
                    print("run %d  %-28s %-6s  %.3f%% CPU  (%.3f s CPU in %.1f s; max RSS %d KiB)" %
                          (rep + 1, name, iv, pct, cpu, wall, rss), flush=True)
    finally:
        ps.terminate()
        park.kill()
        ps.wait()
        park.wait()
    print("uptime:", open("/proc/loadavg").read().strip())
    print("\nmedians:")
    for (name, iv), v in res.items():
        print("  %-28s %-6s  %.3f%% of one core (runs: %s)" % (name, iv, statistics.median(v),
                                                             ", ".join("%.3f" % x for x in v)))


if __name__ == "__main__":
    main()
