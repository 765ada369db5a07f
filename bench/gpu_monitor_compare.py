#!/usr/bin/python3
"""Side by side: pixbench monitor's GPU figures (100 ms, drained from the
driver's sample buffer) against nvidia-smi dmon's (1 s) taken at the same
time by bench/gpu_monitor_check.sh. Reads OUT/pixbench-monitor.csv,
OUT/dmon.txt and, if present, OUT/compute-apps.csv and OUT/load_busy.csv;
prints the summary. Standard library only.

    python3 bench/gpu_monitor_compare.py OUT
"""
import csv
import os
import sys
import time


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def read_pixbench(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def read_dmon(path):
    """dmon's table: a '#' header naming the columns, a '#' line of units,
    then one line per GPU per second. Returns dicts with 'unix' added."""
    names, rows = None, []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                if names is None:
                    names = line[1:].split()
                continue
            parts = line.split()
            if not names or len(parts) != len(names):
                continue
            r = dict(zip(names, parts))
            if "Date" in r and "Time" in r:
                r["unix"] = time.mktime(time.strptime(r["Date"] + " " + r["Time"], "%Y%m%d %H:%M:%S"))
            rows.append(r)
    return rows


def stats(vals):
    v = [x for x in vals if x is not None]
    if not v:
        return None, None, 0
    return sum(v) / len(v), max(v), len(v)


def fmt(x, d=1):
    return "-" if x is None else ("%.*f" % (d, x))


def main(out):
    pb = read_pixbench(os.path.join(out, "pixbench-monitor.csv"))
    dm = read_dmon(os.path.join(out, "dmon.txt"))
    gpu = os.environ.get("GPU", "0")
    dm = [r for r in dm if r.get("gpu", r.get("Idx", "0")) == gpu]
    if not pb:
        print("no pixbench samples (see pixbench-monitor.err)")
        return 1
    # the common time span, so idle time before or after one of them does not skew the means
    t0 = max(num(pb[0]["unix_time"]), dm[0]["unix"] if dm else 0)
    t1 = min(num(pb[-1]["unix_time"]), dm[-1]["unix"] + 1 if dm else 1e18)
    pbw = [r for r in pb if t0 <= num(r["unix_time"]) <= t1]
    dmw = [r for r in dm if t0 <= r["unix"] + 0.5 <= t1]
    g = "gpu%s_" % gpu
    if g + "util_percent" not in pb[0]:
        print("pixbench saw no GPU: %s" % open(os.path.join(out, "pixbench-monitor.err")).read().strip())
        return 1

    def col(rows, k):
        return [num(r.get(k)) for r in rows]

    rows = []
    pm, pp, pn = stats(col(pbw, g + "util_percent"))
    _, ppeak, _ = stats(col(pbw, g + "util_max_percent"))
    dmn, dpk, dn = stats(col(dmw, "sm"))
    rows.append(("SM utilisation mean %", fmt(pm), fmt(dmn)))
    rows.append(("SM utilisation peak %", fmt(ppeak) + " (max of driver samples)", fmt(dpk)))
    m1, _, _ = stats(col(pbw, g + "mem_util_percent"))
    m2, _, _ = stats(col(dmw, "mem"))
    rows.append(("memory-controller utilisation mean %", fmt(m1), fmt(m2)))
    u1, k1, _ = stats(col(pbw, g + "mem_used_mb"))
    u2, k2, _ = stats(col(dmw, "fb"))
    rows.append(("GPU memory used peak MB", fmt(k1, 0), fmt(k2, 0) + " (fb)"))
    _, kp, npm = stats(col(pbw, g + "process_mem_mb"))
    apps = ""
    p = os.path.join(out, "compute-apps.csv")
    if os.path.exists(p):
        apps = " ".join(l.strip() for l in open(p).readlines()[1:] if l.strip())
    rows.append(("the load's own GPU memory MB", fmt(kp, 0) if npm else "not found (NVML lists host PIDs?)",
                 "query-compute-apps: " + (apps or "-")))
    w1, wk1, _ = stats(col(pbw, g + "power_w"))
    w2, wk2, _ = stats(col(dmw, "pwr"))
    rows.append(("power mean / peak W", "%s / %s" % (fmt(w1), fmt(wk1)), "%s / %s" % (fmt(w2), fmt(wk2))))
    c1, _, _ = stats(col(pbw, g + "sm_mhz"))
    c2, _, _ = stats(col(dmw, "pclk"))
    rows.append(("SM clock mean MHz", fmt(c1, 0), fmt(c2, 0)))
    t1m, t1k, _ = stats(col(pbw, g + "temp_c"))
    t2m, t2k, _ = stats(col(dmw, "gtemp"))
    rows.append(("temperature max C", fmt(t1k, 0), fmt(t2k, 0)))
    drained = sum(int(num(r.get(g + "samples")) or 0) for r in pbw)
    rows.append(("samples", "%d (every 100 ms; %d driver samples drained)" % (len(pbw), drained), "%d (1 s)" % len(dmw)))
    names = ["idle", "app_clocks", "sw_power_cap", "hw_slowdown", "sync_boost", "sw_thermal", "hw_thermal",
             "hw_power_brake", "display_clocks"]
    seen = 0
    for r in pbw:
        v = r.get(g + "throttle")
        if v:
            seen |= int(v, 16)
    thr = [n for i, n in enumerate(names) if seen & (1 << i) and i > 0]
    rows.append(("throttle reasons seen", ", ".join(thr) or "none (idle aside)", "-"))

    # per second, side by side: pixbench's mean of the second and max of its driver samples
    per = []
    for r in dmw:
        s = [x for x in pbw if r["unix"] <= num(x["unix_time"]) < r["unix"] + 1]
        mean, _, _ = stats(col(s, g + "util_percent"))
        _, mx, _ = stats(col(s, g + "util_max_percent"))
        per.append((r["Time"] if "Time" in r else "", num(r.get("sm")), mean, mx))
    busy = os.path.join(out, "load_busy.csv")
    spikes = ""
    if os.path.exists(busy):
        with open(busy) as f:
            b = [(num(x["busy_start_unix"]), num(x["busy_end_unix"])) for x in csv.DictReader(f)]
        short = [(s, e) for s, e in b if e - s < 0.5]
        seen_pb = sum(1 for s, e in short if any(s - 0.2 <= num(x["unix_time"]) <= e + 0.6 and
                                                 (num(x.get(g + "util_max_percent")) or 0) >= 50 for x in pb))
        seen_dm = sum(1 for s, e in short if any(s - 0.5 <= x["unix"] + 1 and x["unix"] <= e + 0.5 and
                                                 (num(x.get("sm")) or 0) >= 50 for x in dm))
        spikes = "short bursts (<0.5 s) seen at >=50%%: pixbench %d of %d, dmon %d of %d" % (
            seen_pb, len(short), seen_dm, len(short))

    w = max(len(r[0]) for r in rows)
    print("\n%-*s  %-44s  %s" % (w, "", "pixbench monitor", "nvidia-smi dmon"))
    for name, a, b in rows:
        print("%-*s  %-44s  %s" % (w, name, a, b))
    if spikes:
        print("\n" + spikes)
    print("\nper second (dmon's sm% | pixbench mean of the second | max of its driver samples):")
    for t, d, m, x in per:
        print("  %s  %5s | %5s | %5s" % (t, fmt(d, 0), fmt(m, 0), fmt(x, 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", ".")))
