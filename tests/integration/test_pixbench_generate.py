"""pixbench's text-to-image modes against a real pixserve with a tiny random
Z-Image model (64x64 and 128x128 images, 1-2 steps): the seed 002 sweep
table with a categorised prompt set, the seed 003 parameter matrix (one axis
at a time) with the server's timings and memory read from each reply, an
error cell reported with its status and code, the async job API by events
and by polling, the OpenAI images route (figures from Server-Timing), a
short soak, and the raw profile's URL path and its all-fail hint. Stages are
a few requests each (--requests, so a loaded machine slows them but
cannot empty them)."""
import json
import os
import tempfile
import unittest

from pxtest import Server, make_tiny_zimage
from test_pixbench import SCHEMA, dur, run, validate

MODEL_DIR = os.path.join(tempfile.gettempdir(), "pixbench-gen-tiny-zimage")


class PixbenchGenerate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hf = os.path.join(MODEL_DIR, "hf")
        if not os.path.isdir(hf):
            hf = make_tiny_zimage(MODEL_DIR)
        cls.srv = Server("--engine", "zimage:model=" + hf)
        cls.url = "http://%s:%d" % (cls.srv.host, cls.srv.port)
        cls.pid = str(cls.srv.proc.pid)
        cls.tmp = tempfile.TemporaryDirectory(prefix="pbgen-")
        cls.prompts = os.path.join(cls.tmp.name, "prompts.json")
        with open(cls.prompts, "w") as f:
            json.dump({"simple": ["1girl, white dress, studio light"],
                       "complex scene": ["cyberpunk street at night, neon signs, rain puddles, 4k",
                                         "a crowded market at dawn, lanterns, steam, many people"]}, f)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.tmp.cleanup()

    def out(self, name):
        return os.path.join(self.tmp.name, name)

    def gen(self, *args, profile="generate"):
        return run("--target", self.url, "--profile", profile, "--width", "64", "--height", "64",
                   "--steps", "2", "--no-progress", *args)

    def test_sweep_seed002_table_with_prompt_categories(self):
        out = self.out("sweep")
        # Sampled every 100 ms: a stage of 4 quick requests can be over before
        # a 1 s sample would land in it.
        rc, so, se = self.gen("--pid", self.pid, "--prompts", self.prompts, "--sweep", "1,2",
                              "--warmup", "0.5s", "--requests", "4", "--monitor-interval", "100ms",
                              "--out", out)
        self.assertEqual(rc, 0, se)
        self.assertIn("### Concurrency (seed 002's table)", so)
        rows = [l for l in so.splitlines() if l.startswith("| 1 |") or l.startswith("| 2 |")]
        self.assertEqual(len(rows), 2, so)
        for r in rows:
            self.assertIn("100.0%", r)   # success rate
            self.assertIn(" MB |", r)    # steady RSS of the watched process
        self.assertIn("no GPU", so)      # the GPU columns say why they are empty
        with open(os.path.join(out, "report.json")) as f:
            validate(json.load(f), SCHEMA)
        with open(os.path.join(out, "generate.json")) as f:
            g = json.load(f)
        self.assertEqual(g["schema"], "pixbench-generate/1")
        self.assertEqual(g["prompts"], 3)
        c = g["cells"][0]
        s = c["server"]
        self.assertGreater(s["parsed"], 0)
        for k in ("text_encode_ms", "denoise_ms", "step_ms", "vae_decode_ms", "total_ms", "prompt_tokens"):
            self.assertGreater(s[k], 0, k)
        self.assertLessEqual(s["step_ms"], s["denoise_ms"] + 1e-6)
        self.assertLessEqual(s["total_ms"], c["client_mean_ms"] * 1.02 + 1)  # the server's part of the wait
        self.assertGreater(s["peak_memory_mb"]["denoise"], 1)
        cats = {x["name"]: x for x in c["categories"]}
        self.assertEqual(set(cats), {"simple", "complex scene"})
        self.assertEqual(sum(x["replies"] for x in cats.values()), s["parsed"])
        if cats["simple"]["replies"] and cats["complex scene"]["replies"]:  # prompts are drawn at random
            self.assertGreater(cats["complex scene"]["prompt_tokens"], cats["simple"]["prompt_tokens"])
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertIn("## Text to image", md)
        self.assertIn("### Prompt complexity", md)

    def test_matrix_one_axis_at_a_time(self):
        out = self.out("matrix")
        rc, so, se = self.gen("--pid", self.pid, "--matrix", "steps=1,2", "cfg=0,7", "size=64x64,128x128",
                              "--matrix-one-at-a-time", "--cfg-scale", "0", "--users", "1",
                              "--warmup", "0.3s", "--requests", "2", "--out", out)
        self.assertEqual(rc, 0, se)
        self.assertIn("Parameters against memory and latency (seed 003's table; baseline steps=2 cfg=0 size=64x64)", so)
        self.assertIn("### Memory by stage", so)
        with open(os.path.join(out, "generate.json")) as f:
            g = json.load(f)
        cells = g["cells"]
        self.assertTrue(g["matrix"])
        self.assertEqual([c["label"] for c in cells], ["steps=2 cfg=0 size=64x64", "steps=1", "cfg=7", "size=128x128"])
        self.assertEqual([c["axis"] for c in cells], [None, "steps", "CFG", "resolution"])
        for c in cells:
            self.assertGreater(c["server"]["parsed"], 0, c["label"])
            self.assertEqual(c["failed"], 0)
        self.assertEqual(cells[3]["width"], 128)
        for c in cells:  # the CPU engine measures its resident memory per stage
            self.assertEqual(c["server"]["memory_source"], "host_rss", c["label"])
            self.assertGreater(c["server"]["peak_memory_mb"]["denoise"], 1, c["label"])
        self.assertIn("| denoise loop | ", so)
        self.assertIn("reply memory.denoise_peak_bytes, RSS |", so)
        # a parameter matrix's cells have no upload: no megapixels column
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertIn("### Per cell", md)
        self.assertNotIn("megapixels", md)
        with open(os.path.join(out, "report.json")) as f:
            stages = json.load(f)["stages"]
        self.assertEqual([s["label"] for s in stages], [c["label"] for c in cells])

    def test_error_cell_says_status_and_code(self):
        # 4096x4096 is over pixserve's default --max-gen-pixels: every request is refused
        out = self.out("refused")
        rc, so, se = self.gen("--matrix", "size=64x64,4096x4096", "--users", "1", "--warmup", "0.3s", "--requests", "2",
                              "--out", out)
        self.assertEqual(rc, 0, se)
        with open(os.path.join(out, "generate.json")) as f:
            cells = json.load(f)["cells"]
        self.assertEqual(cells[0]["failed"], 0)
        self.assertGreater(cells[1]["failed"], 0)
        self.assertEqual(cells[1]["last_error"]["status"], 400)
        self.assertEqual(cells[1]["last_error"]["code"], "invalid_input")
        self.assertEqual(cells[1]["out_of_memory"], 0)  # a refusal is not called an OOM
        self.assertIn("failed with status 400", so)

    def test_async_events_and_polling(self):
        for extra, mode in (([], "events"), (["--poll", "50ms"], "poll")):
            out = self.out("async-" + mode)
            rc, so, se = self.gen("--async", *extra, "--users", "2", "--duration", dur(3), "--out", out)
            self.assertEqual(rc, 0, se)
            with open(os.path.join(out, "async.json")) as f:
                a = json.load(f)
            self.assertEqual(a["mode"], mode)
            st = a["stages"][0]
            self.assertGreater(st["done"], 0, so)
            self.assertEqual(st["failed"] + st["submit_failed"] + st["timed_out"] + st["lost"], 0, st["last_error"])
            self.assertEqual(st["server_clock"], st["done"])  # pixserve's jobs carry their times
            self.assertLessEqual(st["queue_ms"]["mean"] + st["run_ms"]["mean"], st["end_to_end_ms"]["mean"] * 1.05 + 5)
            self.assertIn("## Async jobs", so)

    def test_openai_images_route(self):
        out = self.out("openai")
        rc, so, se = self.gen("--users", "1", "--warmup", "0.3s", "--requests", "2", "--out", out,
                              profile="openai-images")
        self.assertEqual(rc, 0, se)
        with open(os.path.join(out, "report.json")) as f:
            r = json.load(f)
        self.assertTrue(r["config"]["target"].endswith("/v1/images/generations"))
        self.assertGreater(r["stages"][0]["successes"], 0)
        self.assertEqual(r["stages"][0]["errors"], 0)
        # OpenAI's reply has no timings: the breakdown comes from Server-Timing, and says so
        self.assertIn("| Server-Timing |", so)

    def test_soak_verdict_names_gpu_memory(self):
        rc, so, se = self.gen("--pid", self.pid, "--soak", dur(3), "--warmup", "0.5s", "--leak-window", "0.5s",
                              "--users", "1", "--monitor-interval", "100ms")
        self.assertIn(rc, (0, 3), se)
        self.assertIn("Soak:", so)
        self.assertIn("GPU memory: not observed (no GPU", so)
        self.assertIn("### Concurrency (seed 002's table)", so)

    def test_raw_url_path_and_all_fail_hint(self):
        rc, so, se = run("--target", self.url + "/healthz", "--profile", "raw", "--users", "1",
                         "--duration", "0.5s", "--no-progress")
        self.assertEqual(rc, 0, se)
        self.assertIn(" 0.00% |", so)
        self.assertIn("/healthz,", se)  # sent to /healthz itself, not /healthz/...
        rc, so, se = run("--target", self.url + "/nothere", "--profile", "raw", "--users", "1",
                         "--duration", "0.5s", "--no-progress")
        self.assertEqual(rc, 0, se)
        self.assertIn("failed with status 404 (sent to /nothere): probably the path does not exist", so)
        self.assertNotIn("process disappeared", so)  # no --pid: no process was watched


if __name__ == "__main__":
    unittest.main()
