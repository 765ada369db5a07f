"""pixbench end to end: the embedded pixserve sweep and its report (with a
schema check of report.json), profiles against pixserve and against
`pixbench echo`, the open loop, SLO exit codes, the remote-target guard and
the payload generator. Runs are a few seconds each."""
import csv
import json
import os
import re
import subprocess
import tempfile
import unittest

from pxtest import BIN, SLOW

PIXBENCH = os.environ.get("PIXBENCH_BIN", os.path.join(os.path.dirname(BIN), "pixbench"))

NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_STR = (str, type(None))
NONE = type(None)
LAT = {k: NUM for k in ("mean", "min", "p50", "p90", "p95", "p99", "p999", "max")}
ERRS = {k: int for k in ("connect", "read", "write", "timeout", "status", "check", "dropped")}
# What the resource monitor adds per stage (null when nothing was sampled)
# and per second; unknown figures are null.
PROCESS = {k: OPT_NUM for k in (
    "cpu_percent_mean", "cpu_percent_max", "busiest_thread_percent_max", "busiest_thread_percent_mean",
    "rss_mb_mean", "rss_mb_peak", "threads_max", "fds_max", "context_switches_per_s",
    "storage_write_mb_per_s", "storage_read_mb_per_s", "client_cpu_percent")}
SYSTEM = {k: OPT_NUM for k in (
    "system_cpu_percent_mean", "busiest_core_percent_max", "mem_available_mb_min", "disk_write_iops_mean",
    "disk_write_iops_max", "disk_write_await_ms_mean", "disk_write_await_ms_max", "disk_write_mb_per_s_mean")}
GPU = dict({k: OPT_NUM for k in (
    "gpu_util_percent_mean", "gpu_util_percent_peak", "gpu_mem_util_percent_mean", "gpu_mem_mb_max",
    "gpu_process_mem_mb_max", "gpu_power_w_mean", "gpu_power_w_max", "gpu_temp_c_max", "gpu_sm_mhz_mean",
    "qps_per_gpu_util_percent")}, throttle_reasons=[str])
STAGE_RES = {"samples": int, "target_alive": (bool, NONE), "process": PROCESS, "system": SYSTEM,
             "gpu": (GPU, NONE)}
POINT_RES = dict({k: OPT_NUM for k in (
    "cpu_percent", "busiest_thread_percent", "rss_mb", "rss_mb_min", "rss_mb_max", "fds", "threads",
    "system_cpu_percent", "busiest_core_percent", "mem_available_mb", "disk_write_iops",
    "disk_write_await_ms", "gpu_util_percent", "gpu_util_peak_percent", "gpu_mem_mb", "gpu_mem_mb_min",
    "gpu_process_mem_mb")}, samples=int)

LEAK = {"verdict": str, "text": str, "unit": str, "windows": int, "window_s": NUM, "slope_per_h": NUM,
        "r2": NUM, "rise": NUM, "span_s": NUM, "window_minima": [[NUM]]}
SOAK = {"leak_suspected": bool, "measured_from_s": NUM, "rss": LEAK,
        "gpu_memory": ({"of": str, "fit": LEAK}, NONE), "fds": LEAK,
        "latency": {"first_ms": OPT_NUM, "last_ms": OPT_NUM, "part_s": NUM, "change": NUM,
                    "flagged": bool, "text": str}}

FIT = ({"intercept": NUM, "per_megapixel": NUM, "r2": NUM}, NONE)
SIZES = {"load": NUM, "load_unit": str,
         "rows": [dict({k: OPT_NUM for k in (
             "megapixels", "qps", "mean_ms", "p95_ms", "peak_gpu_mem_mb", "gpu_util_percent_peak",
             "busiest_thread_percent_max", "cpu_percent_mean", "rss_mb_peak", "rss_mb_mean")},
             label=str, pixels=NUM)],
         "fit": {"mean_latency_ms": FIT, "peak_rss_mb": FIT, "peak_gpu_mem_mb": FIT}}

# A small JSON-schema-like description of report.json (schema "pixbench/2"):
# dicts list required keys with their types, [x] is a list of x, a tuple
# holding a dict is "this object or null".
SCHEMA = {
    "schema": str, "generator": str, "title": str, "started_unix_ms": NUM, "duration_s": NUM,
    "interrupted": bool,
    "config": {"cmdline": str, "target": str, "profile": str, "payloads": str, "mode": str,
               "arrivals": OPT_STR, "think_min_s": NUM, "think_max_s": NUM, "spawn_rate": NUM,
               "threads": int, "connections": int, "warmup_s": NUM, "stage_s": NUM,
               "timeout_s": NUM, "max_wait_s": NUM, "check": str, "slo": OPT_STR,
               "error_threshold": NUM, "seed": int},
    "environment": {"host": str, "kernel": str, "cpus": int, "server": OPT_STR},
    "monitor": {"enabled": bool, "interval_s": OPT_NUM, "pid": OPT_NUM, "gpu": OPT_STR, "gpus": int,
                "disk": OPT_STR, "peak_rss": str},
    "stages": [{
        "index": int, "load": NUM, "load_unit": str, "start_s": NUM, "warmup_s": NUM,
        "measured_s": NUM, "complete": bool, "requests": int, "successes": int, "errors": int,
        "error_rate": NUM, "errors_by_class": ERRS, "late": int, "qps": NUM, "latency_ms": LAT,
        "mb_per_s_in": NUM, "mb_per_s_out": NUM, "client_cpu_percent": NUM,
        "server_cpu_percent": NUM, "server_rss_mb": NUM, "stability": (dict, type(None)),
        "server_timing_ms": dict, "slo": (dict, type(None)), "histogram_ns": [[int]],
        "label": OPT_STR, "pixels": OPT_NUM, "resources": (STAGE_RES, NONE),
    }],
    "series": [{"t": NUM, "dt": NUM, "stage": int, "measuring": bool, "load": NUM, "active": int,
                "successes": int, "errors": int, "late": int, "qps": NUM, "mean_ms": NUM,
                "p50_ms": NUM, "p95_ms": NUM, "p99_ms": NUM, "max_ms": NUM,
                "client_cpu_percent": NUM, "server_cpu_percent": NUM, "server_rss_mb": NUM,
                "resources": (POINT_RES, NONE)}],
    "analysis": {"saturation_stage": (int, type(None)), "sweet_spot_stage": (int, type(None)),
                 "peak_qps": NUM, "slo_met": (bool, type(None)), "hints": [str]},
    "soak": (SOAK, NONE),
    "sizes": (SIZES, NONE),
}


def validate(doc, schema, path="$"):
    """Raises AssertionError naming the first place where doc does not fit."""
    if isinstance(schema, dict):
        assert isinstance(doc, dict), "%s: expected an object" % path
        for k, sub in schema.items():
            assert k in doc, "%s: missing %r" % (path, k)
            validate(doc[k], sub, "%s.%s" % (path, k))
    elif isinstance(schema, list):
        assert isinstance(doc, list), "%s: expected an array" % path
        for i, item in enumerate(doc):
            validate(item, schema[0], "%s[%d]" % (path, i))
    elif isinstance(schema, tuple) and any(isinstance(x, (dict, list)) for x in schema):
        if doc is None and NONE in schema:
            return
        sub = next(x for x in schema if isinstance(x, (dict, list)))
        validate(doc, sub, path)
    else:
        types = schema if isinstance(schema, tuple) else (schema,)
        ok = isinstance(doc, types) and not (isinstance(doc, bool) and bool not in types)
        assert ok, "%s: %r is not %s" % (path, doc, types)


def dur(seconds):
    """A stage length for runs against the embedded pixserve, which computes
    several times slower in sanitizer builds."""
    return "%gs" % (seconds * SLOW)


def run(*args, timeout=120):
    p = subprocess.run([PIXBENCH, *args], capture_output=True, text=True, timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr


class Echo:
    """A `pixbench echo` child."""

    def __init__(self, *flags):
        self.proc = subprocess.Popen([PIXBENCH, "echo", "--port", "0", *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("echo did not start: %r" % line)
        self.url = "http://127.0.0.1:%s" % m.group(1)

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=30)
        return self.proc.returncode


class PixbenchTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pbit-")
        self.out = os.path.join(self.tmp.name, "report")

    def tearDown(self):
        self.tmp.cleanup()

    def report(self):
        with open(os.path.join(self.out, "report.json")) as f:
            doc = json.load(f)
        validate(doc, SCHEMA)
        self.assertEqual(doc["schema"], "pixbench/2")
        return doc

    def test_help(self):
        for sub in ([], ["echo"], ["payload"]):
            rc, out, _ = run(*sub, "--help")
            self.assertEqual(rc, 0)
            self.assertIn("usage", out)
        rc, out, _ = run("--help")
        for word in ("--sweep", "--rate", "seed-inpaint", "--slo", "--mask-coverage"):
            self.assertIn(word, out)
        rc, _, err = run("--no-such-flag")
        self.assertEqual(rc, 2)

    def test_embedded_sweep_and_report(self):
        # small sizes: many requests end inside each stage even on a loaded
        # machine (128x96 took 0.23 s a request under load)
        rc, out, err = run("--sweep", "1,2", "--duration", dur(2), "--warmup", dur(1),
                           "--sizes", "64x48,96x64", "--stability", "--slo", "errors<50%",
                           "--out", self.out)
        self.assertEqual(rc, 0, err + out)
        self.assertRegex(out, r"users \|\s+QPS \|\s+mean ms")
        self.assertIn("Report: %s/report.md" % self.out, out)
        doc = self.report()
        self.assertEqual(len(doc["stages"]), 2)
        self.assertIn("pixserve", doc["environment"]["server"])
        for st in doc["stages"]:
            self.assertGreater(st["successes"], 0)
            self.assertEqual(st["errors"], 0, st["errors_by_class"])
            self.assertGreater(st["qps"], 0)
            lat = st["latency_ms"]
            self.assertLessEqual(lat["p50"], lat["p95"])
            self.assertLessEqual(lat["p95"], lat["p99"])
            self.assertLessEqual(lat["p99"], lat["max"])
            self.assertEqual(sum(b[2] for b in st["histogram_ns"]), st["successes"])
            self.assertIn("infer", st["server_timing_ms"])  # pixserve's Server-Timing
            self.assertTrue(st["slo"]["met"])
            self.assertGreater(st["server_cpu_percent"], 0)
            # the resource sections: the embedded pixserve is sampled
            res = st["resources"]
            self.assertGreater(res["samples"], 0)
            self.assertTrue(res["target_alive"])
            self.assertGreater(res["process"]["rss_mb_peak"], 1)
            self.assertGreaterEqual(res["process"]["rss_mb_peak"], res["process"]["rss_mb_mean"])
            self.assertGreater(res["process"]["busiest_thread_percent_max"], 0)
            self.assertGreater(res["process"]["fds_max"], 3)
            self.assertGreaterEqual(res["system"]["system_cpu_percent_mean"], 0)
        mon = doc["monitor"]
        self.assertTrue(mon["enabled"])
        self.assertEqual(mon["peak_rss"], "kernel_peak_reset_per_stage")
        if mon["gpus"] == 0:
            self.assertTrue(mon["gpu"].startswith("no GPU"), mon["gpu"])
            self.assertIsNone(doc["stages"][0]["resources"]["gpu"])
        self.assertTrue(any(p["resources"] for p in doc["series"]))
        self.assertTrue(doc["analysis"]["slo_met"])
        self.assertGreaterEqual(len(doc["series"]), 4)
        with open(os.path.join(self.out, "report.html")) as f:
            html = f.read()
        self.assertIn("<svg", html)
        self.assertNotIn("<script src", html)  # self-contained
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read()
        self.assertIn("| users | QPS |", md)
        self.assertIn("## Resources", md)
        self.assertIn("### Target process", md)
        self.assertIn("single-core peak %", md)
        self.assertIn("### System", md)
        self.assertIn("Resources over time", html)
        with open(os.path.join(self.out, "resources.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 2)
        self.assertTrue(float(rows[0]["rss_mb_peak"]) > 0)
        with open(os.path.join(self.out, "stages.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["users"] for r in rows], ["1", "2"])
        for name in ("timeseries.csv", "histograms.csv", "server_timing.csv"):
            self.assertTrue(os.path.getsize(os.path.join(self.out, name)) > 0)

    def test_soak_short(self):
        # 12 s of load after a 3 s warm-up: the verdict and its section
        # exist; in a release build pixserve must not look like it leaks.
        # (Under ASan its quarantine holds freed memory, so RSS does grow.)
        rc, out, err = run("--soak", "12s", "--warmup", "3s", "--users", "2", "--sizes", "96x64",
                           "--monitor-interval", "200ms", "--leak-window", "2s", "--out", self.out)
        self.assertIn(rc, (0, 3), err)
        self.assertIn("Soak: ", out)
        doc = self.report()
        soak = doc["soak"]
        self.assertGreaterEqual(soak["rss"]["windows"], 5)
        self.assertIn(soak["rss"]["verdict"], ("no_leak", "no_leak_step", "leak_suspected"))
        self.assertGreater(soak["latency"]["first_ms"], 0)
        if doc["monitor"]["gpus"] == 0:
            self.assertIsNone(soak["gpu_memory"])
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read()
        self.assertRegex(md, r"## Soak: (no leak detected|leak suspected)")
        self.assertRegex(md, r"\| RSS \| (no leak detected \(slope [-\d.]+ MB/h, r\xb2 [\d.]+|leak suspected)")
        with open(os.path.join(self.out, "report.html")) as f:
            self.assertIn("window minima and the fitted line", f.read())
        if SLOW == 1:
            self.assertEqual(rc, 0, out)
            self.assertFalse(soak["leak_suspected"], soak["rss"]["text"])
        # a sweep is not a soak
        rc, _, err = run("--soak", "10s", "--sweep", "1,2")
        self.assertEqual(rc, 2)

    def test_size_matrix(self):
        # one stage per size at one load, the seed's small/medium/large
        # table (here with small sizes), memory and latency fitted on pixels.
        # A stage counts the requests that end inside it: sizes whose
        # requests take milliseconds, so that a loaded machine (where
        # 192x144 took 0.3 s) still ends many in every stage.
        rc, out, err = run("--sizes", "32x24,48x36,64x48", "--size-matrix", "--users", "1",
                           "--duration", dur(1.5), "--monitor-interval", "200ms", "--out", self.out)
        self.assertEqual(rc, 0, err + out)
        self.assertIn("Mean latency against pixels:", out)
        doc = self.report()
        self.assertEqual([s["label"] for s in doc["stages"]], ["32x24", "48x36", "64x48"])
        self.assertEqual([s["pixels"] for s in doc["stages"]], [768, 1728, 3072])
        self.assertEqual({s["load"] for s in doc["stages"]}, {1})
        sizes = doc["sizes"]
        self.assertEqual(len(sizes["rows"]), 3)
        for row, st in zip(sizes["rows"], doc["stages"]):
            self.assertGreater(st["successes"], 0)
            self.assertEqual(st["errors"], 0, st["errors_by_class"])  # every reply had its own size
            self.assertGreater(row["rss_mb_peak"], 0)
            self.assertGreater(row["busiest_thread_percent_max"], 0)
        self.assertIsNotNone(sizes["fit"]["peak_rss_mb"])
        self.assertIsNotNone(sizes["fit"]["mean_latency_ms"])
        self.assertIsNone(doc["analysis"]["saturation_stage"])
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read()
        self.assertIn("## Size matrix", md)
        self.assertIn("| size | megapixels | QPS |", md)
        self.assertIn("Peak RSS against pixels", md)
        # named sizes make a matrix too; it cannot be mixed with a sweep
        rc, _, err = run("--sizes", "small,large", "--sweep", "1,2", "--duration", "1s")
        self.assertEqual(rc, 2)
        self.assertIn("one load", err)

    def test_seed_inpaint_profile_base64(self):
        rc, out, err = run("--profile", "seed-inpaint", "--return-type", "base64", "--users", "1",
                           "--duration", dur(2), "--sizes", "80x60", "--out", self.out)
        self.assertEqual(rc, 0, err)
        st = self.report()["stages"][0]
        self.assertGreater(st["successes"], 0)
        self.assertEqual(st["errors"], 0, st["errors_by_class"])

    def test_slo_broken_exits_3(self):
        rc, out, err = run("--users", "1", "--duration", dur(1), "--sizes", "64x48",
                           "--slo", "p50<1us,errors<1%")
        self.assertEqual(rc, 3, err)
        self.assertIn("SLO broken", out)
        rc, _, err = run("--slo", "p95<<3", "--duration", "1s")
        self.assertEqual(rc, 2)

    def test_remote_target_refused(self):
        rc, _, err = run("--target", "http://192.0.2.1:80", "--profile", "raw", "--duration", "1s")
        self.assertEqual(rc, 2)
        self.assertIn("--allow-remote", err)

    def test_raw_profile_against_echo_closed_and_open(self):
        echo = Echo("--delay", "uniform:2ms:6ms")
        try:
            rc, out, err = run("--target", echo.url, "--profile", "raw", "--users", "4",
                               "--duration", "2s", "--out", self.out)
            self.assertEqual(rc, 0, err)
            st = self.report()["stages"][0]
            self.assertEqual(st["errors"], 0)
            self.assertGreater(st["successes"], 100)
            self.assertGreaterEqual(st["latency_ms"]["p50"], 2.0)
            self.assertIn("wait", st["server_timing_ms"])
            rc, out, err = run("--target", echo.url, "--profile", "raw", "--rate", "100",
                               "--duration", "2s", "--out", self.out)
            self.assertEqual(rc, 0, err)
            doc = self.report()
            st = doc["stages"][0]
            self.assertEqual(doc["config"]["mode"], "open")
            self.assertGreater(st["successes"], 120)
            self.assertLess(st["successes"], 260)
        finally:
            self.assertEqual(echo.stop(), 0)

    def test_fast_wrong_answer_is_an_error(self):
        # echo answers 200 text/plain in microseconds: for the pixserve
        # profile that is not an image, so every request is a check error
        echo = Echo()
        try:
            rc, out, err = run("--target", echo.url, "--users", "1", "--duration", "1s",
                               "--sizes", "64x48", "--out", self.out)
            self.assertEqual(rc, 0, err)
            st = self.report()["stages"][0]
            self.assertEqual(st["successes"], 0)
            self.assertGreater(st["errors_by_class"]["check"], 10)
            self.assertEqual(st["error_rate"], 1)
        finally:
            echo.stop()

    def test_payload_subcommand(self):
        rc, out, err = run("payload", "--sizes", "200x100", "--payloads", "3",
                           "--mask-coverage", "20-25%", "--out", self.tmp.name)
        self.assertEqual(rc, 0, err)
        covs = [float(x) for x in re.findall(r"coverage ([\d.]+)%", out)]
        self.assertEqual(len(covs), 3)
        for c in covs:
            self.assertGreaterEqual(c, 20.0)
            self.assertLessEqual(c, 25.0)
        self.assertTrue(os.path.exists(os.path.join(self.tmp.name, "mask-200x100-2.png")))


if __name__ == "__main__":
    unittest.main()
