"""LoRAs through the HTTP API (docs/api.md "LoRAs"), end to end on a tiny
random Z-Image (pxtest.make_tiny_zimage) with tiny LoRAs written by
tools/zimage_lora.py (PEFT and kohya spellings, rank 4).

One `pixserve serve --engine zimage:model=DIR --lora-dir DIR` answers:
GET /api/v1/loras (the directory's files; loaded ones with the engine's
description and load time), POST /api/v1/loras by file name (no path
escapes) and by upload (written into the directory only if it loads), bad
files refused at once with the engine's message (and the service keeps
serving), generate requests on all three routes with "loras" (the image
differs from the one without, the same seed and LoRA give the same bytes,
scale 0 gives the image without; jobs with different LoRAs in flight
together each get the image they get alone; the reply and the job status
say which LoRAs were used), unknown names and bad values answered 400, and a LoRA
deleted while a job runs with it: the job finishes, new requests get 400.
A second server without --lora-dir answers the routes and LoRA requests
with errors that say so. Images are 64x64 with 2 steps.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from pxtest import ROOT, SLOW, Server, decode, make_tiny_zimage

sys.path.insert(0, os.path.join(ROOT, "tools"))
import gguf_write  # noqa: E402  (numpy-only safetensors writer)

LORA_TOOL = os.path.join(ROOT, "tools", "zimage_lora.py")
BASE = {"prompt": "a red fox in the snow", "width": 64, "height": 64,
        "num_inference_steps": 2, "seed": 11}


def write_lora(path, model, spelling, seed):
    subprocess.run(["/usr/bin/python3", LORA_TOOL, "write", path, "--model", model,
                    "--spelling", spelling, "--rank", "4", "--seed", str(seed)],
                   check=True, timeout=300, stdout=subprocess.DEVNULL)


class LoraApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxlora-")
        cls.model = make_tiny_zimage(os.path.join(cls.tmp, "m"))
        cls.dir = os.path.join(cls.tmp, "loras")
        os.mkdir(cls.dir)
        write_lora(os.path.join(cls.dir, "style.safetensors"), cls.model, "peft", 3)
        write_lora(os.path.join(cls.dir, "ink.safetensors"), cls.model, "kohya", 4)
        # Keys for a block the tiny model does not have (it has 2 layers).
        r, dim = 4, 64
        gguf_write.write_safetensors(os.path.join(cls.dir, "wrongmodel.safetensors"), [
            ("transformer.layers.9.attention.to_q.lora_A.weight", np.ones((r, dim), np.float32)),
            ("transformer.layers.9.attention.to_q.lora_B.weight", np.ones((dim, r), np.float32))])
        with open(os.path.join(cls.dir, "README.txt"), "w") as f:
            f.write("not a LoRA\n")
        cls.srv = Server("--engine", "zimage:model=" + cls.model, "--lora-dir", cls.dir,
                         wait_ready=False)
        cls.srv.wait_ready(timeout=120)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.read_log() if rc != 0 else ""
        cls.srv.tmp.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("pixserve exited %r\n%s" % (rc, log[-3000:]))

    # ------------------------------------------------------------ helpers

    def generate(self, loras=None, path="/api/v1/generate", **over):
        body = dict(BASE, **over)
        if loras is not None:
            body["loras"] = loras
        st, _, data = self.srv.post_json(path, body, timeout=120)
        return st, json.loads(data)

    def image(self, loras=None, **over):
        st, js = self.generate(loras, **over)
        self.assertEqual(st, 200, js)
        return js, decode(base64.b64decode(js["images"][0]))

    def loras(self):
        st, js = self.srv.get_json("/api/v1/loras")
        self.assertEqual(st, 200, js)
        return {x["name"]: x for x in js["loras"]}

    def register(self, name, file):
        st, _, data = self.srv.post_json("/api/v1/loras", {"name": name, "file": file})
        return st, json.loads(data)

    def upload(self, name, data):
        st, _, body = self.srv.request("POST", "/api/v1/loras?name=" + name, data,
                                       {"Content-Type": "application/octet-stream"})
        return st, json.loads(body)

    def assert_serving(self):
        st, js = self.srv.get_json("/healthz")
        self.assertEqual((st, js["status"]), (200, "ok"), js)

    def wait_job(self, job_id, until, timeout=120):
        deadline = time.time() + timeout * SLOW
        while True:
            st, job = self.srv.get_json("/api/v1/jobs/" + job_id)
            self.assertEqual(st, 200, job)
            if until(job) or time.time() > deadline:
                return job
            time.sleep(0.02)

    # ------------------------------------------------------------ listing

    def test_list_is_the_directory(self):
        ls = self.loras()
        for name in ("style", "ink", "wrongmodel"):
            self.assertIn(name, ls)
            self.assertEqual(ls[name]["file"], name + ".safetensors")
            self.assertEqual(ls[name]["size_bytes"],
                             os.path.getsize(os.path.join(self.dir, name + ".safetensors")))
        self.assertNotIn("README", ls)
        st, js = self.srv.get_json("/api/v1/loras/style")
        self.assertEqual((st, js["name"]), (200, "style"))
        st, js = self.srv.get_json("/api/v1/loras/nope")
        self.assertEqual(st, 404)
        self.assertIn("style", js["error"]["message"])

    def test_loaded_lora_is_described(self):
        self.image([{"name": "ink", "scale": 0.5}])
        ink = self.loras()["ink"]
        self.assertTrue(ink["loaded"])
        eng = ink["engines"][0]
        self.assertEqual(eng["engine"], "zimage")
        self.assertEqual(eng["rank"], 4)
        self.assertEqual(eng["spelling"], "kohya")
        self.assertEqual(eng["dtype"], "f32")
        self.assertGreater(eng["bytes"], 0)
        self.assertGreaterEqual(eng["load_ms"], 0)
        self.assertEqual(eng["in_use"], 0)  # the request has ended
        st, js = self.srv.get_json("/api/v1/loras")
        self.assertGreaterEqual(js["loaded_bytes"], eng["bytes"])
        self.assertEqual(js["cache_limit_bytes"], 1 << 30)
        self.assertEqual(self.srv.metric("pixserve_loras_registered"), len(js["loras"]))
        self.assertGreaterEqual(self.srv.metric("pixserve_lora_loaded_bytes"), eng["bytes"])
        self.assertGreater(self.srv.metric('pixserve_requests_total{route="/api/v1/loras"}'), 0)

    # ------------------------------------------------------------ registering

    def test_register_by_file(self):
        st, js = self.register("style-alias", "style.safetensors")
        self.assertEqual(st, 201, js)
        self.assertFalse(js["replaced"])
        self.assertTrue(js["lora"]["loaded"])  # opened to check it
        self.assertEqual(js["lora"]["engines"][0]["spelling"], "peft")
        st, js = self.register("style-alias", "ink.safetensors")
        self.assertEqual(st, 200, js)
        self.assertTrue(js["replaced"])
        self.assertEqual(self.loras()["style-alias"]["file"], "ink.safetensors")
        self.image([{"name": "style-alias"}])

    def test_register_refuses_paths(self):
        for name, file in (("x", "../loras/style.safetensors"), ("x", "/etc/passwd"),
                           ("x", "sub/style.safetensors"), ("x", ".hidden.safetensors"),
                           ("x", "README.txt"), ("../x", "style.safetensors"),
                           ("a b", "style.safetensors")):
            st, js = self.register(name, file)
            self.assertEqual(st, 400, (name, file, js))
        st, js = self.register("x", "missing.safetensors")
        self.assertEqual(st, 404, js)
        self.assertNotIn("x", self.loras())

    def test_bad_file_is_refused_at_once(self):
        st, js = self.register("wrong", "wrongmodel.safetensors")
        self.assertEqual(st, 422, js)
        msg = js["error"]["message"]
        self.assertIn("layers.9", msg)  # the engine says what did not match
        self.assertNotIn(self.dir, msg)  # and names no server path
        self.assertNotIn("wrong", self.loras())
        # Listed from the directory, it fails when a request uses it: a 400
        # with the same message, and nothing is left loaded or held.
        st, js = self.generate([{"name": "wrongmodel"}])
        self.assertEqual(st, 400, js)
        self.assertIn("layers.9", js["error"]["message"])
        self.assertFalse(self.loras()["wrongmodel"]["loaded"])
        self.assert_serving()
        self.image()

    def test_upload(self):
        with open(os.path.join(self.dir, "ink.safetensors"), "rb") as f:
            data = f.read()
        before = set(os.listdir(self.dir))
        st, js = self.upload("uploaded", data)
        self.assertEqual(st, 201, js)
        self.assertEqual(js["lora"]["size_bytes"], len(data))
        self.assertEqual(set(os.listdir(self.dir)), before | {"uploaded.safetensors"})
        with open(os.path.join(self.dir, "uploaded.safetensors"), "rb") as f:
            self.assertEqual(f.read(), data)
        # The same LoRA under two names gives the same image.
        _, a = self.image([{"name": "uploaded", "scale": 0.7}])
        _, b = self.image([{"name": "ink", "scale": 0.7}])
        self.assertTrue(np.array_equal(a, b))

        # A bad upload is refused with the engine's message and leaves no file.
        st, js = self.upload("garbage", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"x" * 64)
        self.assertIn(st, (400, 422), js)
        self.assertIn("uploaded file", js["error"]["message"])
        st, js = self.upload("garbage2", data[:len(data) // 2])  # cut short
        self.assertIn(st, (400, 422), js)
        self.assertEqual(set(os.listdir(self.dir)), before | {"uploaded.safetensors"})
        st, js = self.upload("../evil", data)
        self.assertEqual(st, 400, js)
        st, _, body = self.srv.request("POST", "/api/v1/loras", data,
                                       {"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 400, body)  # an upload must say its name
        self.assertEqual(set(os.listdir(self.dir)), before | {"uploaded.safetensors"})
        self.assert_serving()

    # ------------------------------------------------------------ generating

    def test_generate_with_a_lora(self):
        _, plain = self.image()
        js, styled = self.image([{"name": "style", "scale": 0.85}])
        self.assertEqual(js["loras"], [{"name": "style", "scale": 0.85}])
        self.assertFalse(np.array_equal(plain, styled))
        _, again = self.image([{"name": "style", "scale": 0.85}])
        self.assertTrue(np.array_equal(styled, again))
        _, zero = self.image([{"name": "style", "scale": 0}])
        self.assertTrue(np.array_equal(plain, zero))
        _, two = self.image([{"name": "style", "scale": 0.85}, {"name": "ink", "scale": -0.5}])
        self.assertFalse(np.array_equal(styled, two))
        js, _ = self.image()
        self.assertEqual(js["loras"], [])

    def test_concurrent_requests_keep_their_loras(self):
        """Jobs with different LoRAs (and none) in flight together: each gets
        the image it gets alone."""
        uses = [[{"name": "style", "scale": 0.85}], [{"name": "ink", "scale": -0.5}], [],
                [{"name": "ink", "scale": 1.5}, {"name": "style", "scale": 0.3}]]
        alone = [self.image(u)[1] for u in uses]
        ids, waiting = [], 0
        for u in uses * 2:
            st, _, data = self.srv.post_json("/api/v1/generate_async", dict(BASE, loras=u))
            self.assertEqual(st, 202, data)
            ids.append(json.loads(data)["id"])
            # a queued or running job's status names its LoRAs too, once
            # its body is parsed
            job = self.wait_job(ids[-1], lambda j: "loras" in j)
            self.assertEqual(job["loras"], u, job)
            waiting += job["status"] in ("queued", "running")
        self.assertGreater(waiting, 0, "every job had ended before its status was read")
        for k, job_id in enumerate(ids):
            job = self.wait_job(job_id, lambda j: j["status"] in ("done", "failed", "cancelled"))
            self.assertEqual(job["status"], "done", job)
            self.assertEqual(job["loras"], uses[k % len(uses)])
            st, _, png = self.srv.request("GET", "/api/v1/jobs/%s/result" % job_id)
            self.assertEqual(st, 200)
            self.assertTrue(np.array_equal(decode(png), alone[k % len(uses)]), k)
        self.assertEqual(self.srv.get_json("/api/v1/loras/style")[1]["engines"][0]["in_use"], 0)

    def test_openai_route_takes_loras(self):
        body = {"prompt": BASE["prompt"], "size": "64x64", "steps": 2, "seed": 11,
                "loras": [{"name": "style", "scale": 0.85}]}
        st, _, data = self.srv.post_json("/v1/images/generations", body, timeout=120)
        self.assertEqual(st, 200, data)
        img = decode(base64.b64decode(json.loads(data)["data"][0]["b64_json"]))
        _, styled = self.image([{"name": "style", "scale": 0.85}])
        self.assertTrue(np.array_equal(img, styled))
        body["loras"] = [{"name": "nope"}]
        st, _, data = self.srv.post_json("/v1/images/generations", body)
        js = json.loads(data)
        self.assertEqual(st, 400, js)
        self.assertEqual(js["error"]["param"], "loras")
        self.assertIn("style", js["error"]["message"])

    def test_refused_values(self):
        cases = [([{"name": "nope"}], "no LoRA named 'nope'"),
                 ([{"name": "style", "scale": 9}], "from -4 to 4"),
                 ([{"name": "style"}, {"name": "style"}], "named twice"),
                 ([{"name": "style"}] * 9, "at most 8"),
                 ([{"name": "../style"}], "not a LoRA name"),
                 ("style", "must be an array")]
        for loras, want in cases:
            st, js = self.generate(loras)
            self.assertEqual(st, 400, (loras, js))
            self.assertIn(want, js["error"]["message"])
            self.assertIn("field 'loras'", js["error"]["message"])
        st, js = self.generate([{"name": "nope"}])
        self.assertIn("style", js["error"]["message"])  # the available names
        self.assert_serving()

    def test_delete_while_a_job_runs_with_it(self):
        st, js = self.register("doomed", "style.safetensors")
        self.assertEqual(st, 201, js)
        # Long enough to be denoising still when the DELETE comes on an idle
        # machine; what is asserted about the hold depends only on what the
        # job's status showed, never on timing.
        body = dict(BASE, width=384, height=384, num_inference_steps=16,
                    loras=[{"name": "doomed", "scale": 0.85}])
        st, _, data = self.srv.post_json("/api/v1/generate_async", body)
        self.assertEqual(st, 202, data)
        job_id = json.loads(data)["id"]
        self.wait_job(job_id, lambda j: j.get("progress", {}).get("step", 0) >= 1 or
                      j["status"] in ("done", "failed"))
        st, held = self.srv.get_json("/api/v1/loras/doomed")
        self.assertEqual(st, 200, held)
        st, job = self.srv.get_json("/api/v1/jobs/" + job_id)
        if job["status"] == "running" and job.get("stage") == "denoise":
            # Its items were still in the engine after the look: it held it.
            self.assertEqual(held["engines"][0]["in_use"], 1, (held, job))
        st, _, data = self.srv.request("DELETE", "/api/v1/loras/doomed")
        self.assertEqual(st, 200, data)
        self.assertNotIn("doomed", self.loras())
        st, js = self.generate([{"name": "doomed"}])
        self.assertEqual(st, 400, js)
        job = self.wait_job(job_id, lambda j: j["status"] in ("done", "failed", "cancelled"))
        self.assertEqual(job["status"], "done", job)
        self.assertEqual(job["loras"], [{"name": "doomed", "scale": 0.85}])
        st, _, data = self.srv.request("DELETE", "/api/v1/loras/doomed")
        self.assertEqual(st, 404, data)
        self.assert_serving()

    def test_pixbench_sends_loras(self):
        # pixbench's --lora / --lora-mix against this server: the mixed
        # workload (each prompt with each LoRA alone) all succeeds, and a
        # name the server does not know fails every request with its 400
        # (so the field reaches the server rather than being dropped).
        import test_pixbench
        url = "http://%s:%d" % (self.srv.host, self.srv.port)
        common = ("--target", url, "--profile", "generate", "--width", "64", "--height", "64",
                  "--steps", "2", "--users", "2", "--requests", "4", "--no-progress")
        rc, so, se = test_pixbench.run(*common, "--lora", "style:0.85", "--lora", "ink:-0.5",
                                       "--lora-mix")
        self.assertEqual(rc, 0, se)
        self.assertIn("100.0%", so)
        rc, so, se = test_pixbench.run(*common, "--lora", "nosuchlora")
        self.assertEqual(rc, 0, se)
        self.assertIn("failed with status 400", so)
        self.assert_serving()


class NoLoraDir(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxlora0-")
        cls.model = make_tiny_zimage(os.path.join(cls.tmp, "m"))
        cls.srv = Server("--engine", "zimage:model=" + cls.model, wait_ready=False)
        cls.srv.wait_ready(timeout=120)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        cls.srv.tmp.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("pixserve exited %r" % (rc,))

    def test_routes_and_requests_say_so(self):
        for method, path in (("GET", "/api/v1/loras"), ("POST", "/api/v1/loras"),
                             ("DELETE", "/api/v1/loras/x")):
            st, _, data = self.srv.request(method, path, b"{}",
                                           {"Content-Type": "application/json"})
            self.assertEqual(st, 404, data)
            self.assertIn("--lora-dir", json.loads(data)["error"]["message"])
        body = dict(BASE, loras=[{"name": "style"}])
        st, _, data = self.srv.post_json("/api/v1/generate", body)
        self.assertEqual(st, 400, data)
        self.assertIn("--lora-dir", json.loads(data)["error"]["message"])
        body["loras"] = []  # no LoRAs asked for: fine
        st, _, data = self.srv.post_json("/api/v1/generate", body, timeout=120)
        self.assertEqual(st, 200, data)


if __name__ == "__main__":
    unittest.main()
