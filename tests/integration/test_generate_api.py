"""The text-to-image service end to end (docs/api.md "Text to image").

One `pixserve serve --engine classic --engine zimage:model=DIR` with a tiny
random Z-Image (pxtest.make_tiny_zimage) answers the three generate APIs:
POST /api/v1/generate (its image is byte-for-byte the image
`pixserve generate` writes for the same seed, after decoding), POST
/api/v1/generate_async with the jobs API and its event stream, and OpenAI's
POST /v1/images/generations. Cancelling while denoising, a client hanging
up, every bad input (the right 4xx in the right error shape, and the server
keeps serving) and inpainting next to zimage in the same server are
checked too. Images are 64x64 with 2 steps; the long jobs that get
cancelled are 256x256 with 50 steps.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import numpy as np

from pxtest import (BIN, SLOW, Server, ServerTest, b64, box_mask, decode, encode,
                    make_tiny_zimage, photo)

PROMPT = "a red fox in the snow, watercolour"
SMALL = {"prompt": PROMPT, "width": 64, "height": 64, "num_inference_steps": 2}
# Long enough to be cancelled mid-way on an idle machine too (about 0.2 s a
# step at 1024² on the tiny model, 10 s in all); 256² finished in 0.5 s,
# before the tests' hang-up.
LONG = {"prompt": PROMPT, "width": 1024, "height": 1024, "num_inference_steps": 50}
STAGES = ("queue", "text_encode", "denoise", "vae_decode", "encode")


def parse_events(text):
    """[(event, data dict)] of a text/event-stream body."""
    out = []
    for block in text.split("\n\n"):
        ev, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if ev:
            out.append((ev, json.loads("\n".join(data))))
    return out


class GenerateApi(ServerTest):
    @classmethod
    def setUpClass(cls):
        cls.model_tmp = tempfile.mkdtemp(prefix="pxgen-")
        cls.model = make_tiny_zimage(os.path.join(cls.model_tmp, "m"))
        cls.srv = Server("--engine", "classic", "--engine", "zimage:model=" + cls.model,
                         wait_ready=False)
        cls.srv.wait_ready(timeout=120)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.model_tmp, ignore_errors=True)

    def post(self, path, body, timeout=120):
        return self.srv.post_json(path, body, timeout=timeout)

    def wait_job(self, job_id, until=("done", "failed", "cancelled", "expired"), timeout=120):
        deadline = time.time() + timeout * SLOW
        while True:
            st, job = self.srv.get_json("/api/v1/jobs/" + job_id)
            self.assertEqual(st, 200, job)
            if job["status"] in until or time.time() > deadline:
                return job
            time.sleep(0.02)

    # ------------------------------------------------------------ sync

    def test_sync_reply_equals_the_cli_image(self):
        st, h, body = self.post("/api/v1/generate", dict(SMALL, seed=7, num_images=2))
        self.assertEqual(st, 200, body[:300])
        r = json.loads(body)
        self.assertEqual((r["width"], r["height"], r["steps"], r["cfg_scale"], r["model"]),
                         (64, 64, 2, 0, "zimage"))
        self.assertEqual(r["seeds"], [7, 8])
        self.assertEqual(len(r["images"]), 2)
        self.assertGreater(r["prompt_tokens"], 0)
        self.assertIs(r["prompt_truncated"], False)
        t = r["timings"]
        for k in ("queue_ms", "text_encode_ms", "denoise_ms", "vae_decode_ms", "encode_ms", "total_ms"):
            self.assertGreaterEqual(t[k], 0, k)
        self.assertEqual(len(t["step_ms"]), 2)
        self.assertGreater(t["denoise_ms"], 0)
        self.assertGreaterEqual(t["total_ms"], t["text_encode_ms"] + t["vae_decode_ms"])
        self.assertEqual(r["memory"]["source"], "host_rss")  # the CPU engine
        for k in ("text_encode_peak_bytes", "denoise_peak_bytes", "vae_decode_peak_bytes"):
            self.assertGreater(r["memory"][k], 1 << 20, k)
        timing = h["server-timing"]
        for stage in STAGES:
            self.assertRegex(timing, r"(^|, )%s;dur=[\d.]+" % stage)
        print("  64x64, 2 steps, 2 images: %s" % timing)

        imgs = [decode(base64.b64decode(x)) for x in r["images"]]
        self.assertEqual(imgs[0].shape, (64, 64, 3))
        self.assertFalse(np.array_equal(imgs[0], imgs[1]), "seeds 7 and 8 give other images")
        out = os.path.join(self.srv.tmp.name, "cli.png")
        p = subprocess.run([BIN, "generate", PROMPT, "-o", out, "--model", self.model, "--width", "64",
                            "--height", "64", "--steps", "2", "--seed", "7"],
                           capture_output=True, text=True, timeout=120 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertTrue(np.array_equal(imgs[0], decode(f.read())), "API and CLI differ for seed 7")

    def test_random_seed_is_reported_and_reproduces(self):
        st, _, body = self.post("/api/v1/generate", dict(SMALL, seed=-1))
        self.assertEqual(st, 200, body[:300])
        r = json.loads(body)
        seed = r["seeds"][0]
        self.assertGreaterEqual(seed, 0)
        st, _, again = self.post("/api/v1/generate", dict(SMALL, seed=seed))
        self.assertEqual(json.loads(again)["images"], r["images"])

    def test_image_url_and_jpeg(self):
        st, _, body = self.post("/api/v1/generate",
                                dict(SMALL, seed=3, return_type="image_url", output_format="jpeg"))
        self.assertEqual(st, 200, body[:300])
        r = json.loads(body)
        self.assertEqual(r["format"], "jpeg")
        url = r["images"][0]
        self.assertRegex(url, r"^/outputs/[A-Za-z0-9_-]+\.jpeg$")
        st, h, data = self.srv.request("GET", url)
        self.assertEqual(st, 200)
        self.assertTrue(data.startswith(b"\xff\xd8"), data[:4])
        self.assertEqual(decode(data).shape, (64, 64, 3))

    # ------------------------------------------------------------ async

    def test_async_events_result_and_status(self):
        st, h, body = self.post("/api/v1/generate_async", dict(SMALL, seed=11, num_images=2,
                                                               num_inference_steps=3))
        self.assertEqual(st, 202, body[:300])
        job = json.loads(body)
        jid = job["id"]
        self.assertEqual(job["status_url"], "/api/v1/jobs/" + jid)
        self.assertEqual(job["events_url"], "/api/v1/jobs/%s/events" % jid)
        self.assertIn(job["status"], ("queued", "running"))
        self.assertIn("position", job)
        st, h, stream = self.srv.request("GET", job["events_url"], timeout=120)
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        events = parse_events(stream.decode())
        names = [e for e, _ in events]
        self.assertEqual(names[0], "status", names)
        self.assertEqual(names[-2:], ["done", "end"], names)
        steps = [(d["step"], d["steps"]) for e, d in events if e == "progress"]
        self.assertEqual(steps, [(1, 3), (2, 3), (3, 3)] * 2, "each step of both images, in order")
        self.assertLess(names.index("progress"), names.index("done"))
        done = events[-2][1]
        self.assertEqual(done["status"], "done")

        st, status = self.srv.get_json("/api/v1/jobs/" + jid)
        self.assertEqual((status["kind"], status["status"]), ("generate", "done"))
        self.assertEqual(status["seeds"], [11, 12])
        res = status["result"]
        self.assertEqual((res["count"], res["width"], res["height"], res["format"]), (2, 64, 64, "png"))
        self.assertEqual(len(status["timings"]["step_ms"]), 3)
        parts = []
        for i, url in enumerate(res["urls"]):
            self.assertEqual(url, "/api/v1/jobs/%s/result?index=%d" % (jid, i))
            st, h, data = self.srv.request("GET", url)
            self.assertEqual((st, h["content-type"]), (200, "image/png"))
            parts.append(decode(data))
        self.assertFalse(np.array_equal(parts[0], parts[1]))
        st, _, data = self.srv.request("GET", res["url"])
        self.assertTrue(np.array_equal(decode(data), parts[0]), "result without index = image 0")
        st, h, body = self.srv.request("GET", res["url"] + "?index=2")
        self.assertJsonError(st, h, body, 404, "not_found")
        # The sync route gives the same image for the same seed.
        st, _, sync = self.post("/api/v1/generate", dict(SMALL, seed=12, num_inference_steps=3))
        self.assertTrue(np.array_equal(decode(base64.b64decode(json.loads(sync)["images"][0])), parts[1]))
        # A stream opened after the job ended replays its steps, then ends.
        st, _, again = self.srv.request("GET", job["events_url"])
        events = parse_events(again.decode())
        self.assertEqual([e for e, _ in events], ["status"] + ["progress"] * 6 + ["done", "end"])
        self.assertEqual([(d["step"], d["steps"]) for e, d in events if e == "progress"],
                         [(1, 3), (2, 3), (3, 3)] * 2)

    def test_position_progress_and_cancel_while_denoising(self):
        st, _, body = self.post("/api/v1/generate_async", dict(LONG, seed=1))
        self.assertEqual(st, 202, body[:300])
        long_id = json.loads(body)["id"]
        # Wait until it denoises (step k of 50, 0 < k < 50).
        deadline = time.time() + 120 * SLOW
        while True:
            st, running = self.srv.get_json("/api/v1/jobs/" + long_id)
            p = running.get("progress") or {}
            if p.get("step", 0) >= 1 or running["status"] not in ("queued", "running"):
                break
            self.assertLess(time.time(), deadline, running)
            time.sleep(0.02)
        self.assertEqual(running["status"], "running", running)
        self.assertEqual(running["progress"]["steps"], 50)
        self.assertLess(running["progress"]["step"], 50)
        self.assertIn(running["stage"], ("denoise", "vae_decode"))
        # A second job waits behind it, first in line.
        st, _, body = self.post("/api/v1/generate_async", dict(SMALL, seed=2))
        queued_id = json.loads(body)["id"]
        queued = self.wait_job(queued_id, until=("queued",), timeout=10)
        deadline = time.time() + 10 * SLOW
        while queued["position"] is None and queued["status"] == "queued" and time.time() < deadline:
            time.sleep(0.01)
            queued = self.srv.get_json("/api/v1/jobs/" + queued_id)[1]
        self.assertEqual((queued["status"], queued["position"]), ("queued", 1), queued)
        # Cancel the long one while it denoises: it stops at its next step.
        t0 = time.time()
        st, h, body = self.srv.request("DELETE", "/api/v1/jobs/" + long_id)
        self.assertEqual(st, 200, body[:300])
        self.assertEqual(json.loads(body)["status"], "cancelled")
        done = self.wait_job(queued_id)
        self.assertEqual(done["status"], "done", done)
        print("  cancelled at step %d of 50; the next job done %.2fs later"
              % (running["progress"]["step"], time.time() - t0))
        st, long_job = self.srv.get_json("/api/v1/jobs/" + long_id)
        self.assertEqual(long_job["status"], "cancelled")
        self.assertLess(long_job["progress"]["step"], 50)
        st, h, body = self.srv.request("DELETE", "/api/v1/jobs/" + long_id)
        self.assertEqual(st, 409)

    def test_client_hangup_cancels(self):
        before = self.srv.metric('pixserve_requests_total{route="/api/v1/generate",status="499"}')
        deadline = time.time() + 60 * SLOW
        while self.srv.get_json("/healthz")[1]["workers"]["busy"]:  # an earlier test's work ends
            self.assertLess(time.time(), deadline, "the device never became free")
            time.sleep(0.01)
        body = json.dumps(dict(LONG, seed=5)).encode()
        s = socket.create_connection((self.srv.host, self.srv.port))
        s.sendall(b"POST /api/v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        # hang up once it computes (a fixed sleep could hang up before the
        # server even read it)
        deadline = time.time() + 60 * SLOW
        while self.srv.get_json("/healthz")[1]["workers"]["busy"] == 0:
            self.assertLess(time.time(), deadline, "the generation never started")
            time.sleep(0.01)
        s.close()
        deadline = time.time() + 60 * SLOW
        while (self.srv.metric('pixserve_requests_total{route="/api/v1/generate",status="499"}') <= before
               and time.time() < deadline):
            time.sleep(0.05)
        self.assertEqual(self.srv.metric('pixserve_requests_total{route="/api/v1/generate",status="499"}'),
                         before + 1)
        # The device is free again: a small generation does not wait 50 steps.
        t0 = time.time()
        st, _, _ = self.post("/api/v1/generate", dict(SMALL, seed=1))
        self.assertEqual(st, 200)
        self.assertHealthy()
        print("  after the hang-up the next generation took %.2fs" % (time.time() - t0))

    # ------------------------------------------------------------ OpenAI

    def test_openai_b64_json_and_url(self):
        body = {"model": "zimage", "prompt": PROMPT, "n": 2, "size": "64x64", "steps": 2, "seed": 7}
        st, h, data = self.post("/v1/images/generations", body)
        self.assertEqual(st, 200, data[:300])
        r = json.loads(data)
        self.assertIsInstance(r["created"], int)
        self.assertEqual(len(r["data"]), 2)
        img = decode(base64.b64decode(r["data"][0]["b64_json"]))
        st, _, native = self.post("/api/v1/generate", dict(SMALL, seed=7))
        self.assertTrue(np.array_equal(img, decode(base64.b64decode(json.loads(native)["images"][0]))))
        st, h, data = self.post("/v1/images/generations", dict(body, n=1, response_format="url"))
        self.assertEqual(st, 200, data[:300])
        url = json.loads(data)["data"][0]["url"]
        prefix = "http://%s:%d/outputs/" % (self.srv.host, self.srv.port)
        self.assertTrue(url.startswith(prefix), url)
        st, _, png = self.srv.request("GET", url[len(prefix) - len("/outputs/"):])
        self.assertEqual(st, 200)
        self.assertTrue(np.array_equal(decode(png), img))

    # ------------------------------------------------------------ errors

    def test_bad_inputs(self):
        cases = [
            ({"width": 64}, 400, "prompt"),
            (dict(SMALL, prompt=""), 400, "prompt"),
            (dict(SMALL, prompt="   "), 400, "prompt"),
            (dict(SMALL, prompt="x" * 4001), 400, "prompt"),
            (dict(SMALL, prompt=7), 400, "prompt"),
            (dict(SMALL, width=100), 400, "multiple of 16"),
            (dict(SMALL, height=8), 400, "height"),
            (dict(SMALL, width=4096, height=4096), 400, "--max-gen-pixels"),
            (dict(SMALL, width="64"), 400, "integer"),
            (dict(SMALL, width=64.5), 400, "integer"),
            (dict(SMALL, num_inference_steps=0), 400, "num_inference_steps"),
            (dict(SMALL, num_inference_steps=51), 400, "num_inference_steps"),
            (dict(SMALL, num_images=5), 400, "num_images"),
            (dict(SMALL, cfg_scale=31), 400, "cfg_scale"),
            (dict(SMALL, cfg_scale="high"), 400, "cfg_scale"),
            (dict(SMALL, seed=-2), 400, "seed"),
            (dict(SMALL, seed=2 ** 60), 400, "seed"),
            (dict(SMALL, return_type="file"), 400, "return_type"),
            (dict(SMALL, output_format="gif"), 400, "output_format"),
            (dict(SMALL, priority="urgent"), 400, "priority"),
            (dict(SMALL, negative_prompt=["x"]), 400, "negative_prompt"),
        ]
        for body, want, part in cases:
            st, h, data = self.post("/api/v1/generate", body)
            self.assertJsonError(st, h, data, want, "invalid_input", part)
            # A job's body is checked after the 202: the job fails with the same error.
            st, h, data = self.post("/api/v1/generate_async", body)
            self.assertEqual(st, 202, data[:300])
            job = self.wait_job(json.loads(data)["id"])
            self.assertEqual((job["status"], job["error"]["code"]), ("failed", "invalid_input"), job)
            self.assertIn(part, job["error"]["message"])
        st, h, data = self.post("/api/v1/generate", dict(SMALL, model="nope"))
        self.assertJsonError(st, h, data, 404, "not_found", "nope")
        st, h, data = self.post("/api/v1/generate", dict(SMALL, model="classic"))
        self.assertJsonError(st, h, data, 404, "not_found", "classic")
        st, h, data = self.srv.request("POST", "/api/v1/generate", b'{"prompt": "x",',
                                       {"Content-Type": "application/json"})
        self.assertJsonError(st, h, data, 400, "invalid_input", "malformed JSON")
        st, h, data = self.srv.request("POST", "/api/v1/generate", b"[1]", {"Content-Type": "application/json"})
        self.assertJsonError(st, h, data, 400, "invalid_input", "object")
        st, h, data = self.srv.request("POST", "/api/v1/generate", b"prompt=x",
                                       {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 415, data)
        st, h, data = self.post("/api/v1/generate", dict(SMALL, padding="x" * 70000))
        self.assertJsonError(st, h, data, 413, "too_large")
        st, h, data = self.srv.request("GET", "/api/v1/generate")
        self.assertEqual((st, h.get("allow")), (405, "POST"))
        # OpenAI's error shape, naming the field.
        for body, param in (({"prompt": PROMPT, "size": "64x65"}, "size"),
                            ({"prompt": PROMPT, "size": "big"}, "size"),
                            ({"prompt": PROMPT, "n": 9}, "n"),
                            ({"prompt": PROMPT, "response_format": "png"}, "response_format"),
                            ({"size": "64x64"}, "prompt")):
            st, h, data = self.post("/v1/images/generations", body)
            self.assertEqual(st, 400, data)
            err = json.loads(data)["error"]
            self.assertEqual((err["type"], err["param"], err["code"]), ("invalid_request_error", param, None), err)
            self.assertTrue(err["message"])
        st, h, data = self.post("/v1/images/generations", {"prompt": PROMPT, "model": "dall-e-3"})
        self.assertEqual(st, 404, data)
        self.assertEqual(json.loads(data)["error"]["type"], "invalid_request_error")
        # Still serving.
        st, _, data = self.post("/api/v1/generate", dict(SMALL, seed=1))
        self.assertEqual(st, 200, data[:300])
        self.assertHealthy()
        self.assertGreater(self.srv.metric("pixserve_generate_step_seconds_count"), 0)
        # Counted under their own kind, not inpaint's.
        self.assertGreater(self.srv.metric('pixserve_jobs_total{kind="generate",outcome="completed"}'), 0)
        self.assertGreater(self.srv.metric('pixserve_stage_duration_seconds_count{kind="generate",stage="infer"}'), 0)

    # ------------------------------------------------------------ service

    def test_inpaint_next_to_zimage(self):
        img = photo(size=(96, 64))
        mask = box_mask(64, 96, [(30, 20, 60, 40)])
        done = 'pixserve_jobs_total{kind="%s",outcome="completed"}'
        before = {k: self.srv.metric(done % k) for k in ("inpaint", "generate")}
        st, h, data = self.post("/api/v1/inpaint", {"image": b64(encode(img)), "mask": b64(encode(mask))})
        self.assertEqual(st, 200, data[:300])
        # The metrics count it under its own kind.
        self.assertEqual(self.srv.metric(done % "inpaint"), before["inpaint"] + 1)
        self.assertEqual(self.srv.metric(done % "generate"), before["generate"])
        out = decode(data)
        self.assertEqual(out.shape, (64, 96, 3))
        self.assertTrue(np.array_equal(out[mask == 0], img[mask == 0]))
        st, eng = self.srv.get_json("/api/v1/engines")
        self.assertEqual({e["name"]: e["kind"] for e in eng["engines"]},
                         {"classic": "inpaint", "zimage": "generate"})
        z = [e for e in eng["engines"] if e["name"] == "zimage"][0]
        self.assertGreater(z["config"]["weight_bytes"], 0)
        self.assertEqual(z["config"]["model"], self.model)
        st, idx = self.srv.get_json("/api/v1")
        for route in ("POST /api/v1/generate", "POST /api/v1/generate_async",
                      "POST /v1/images/generations", "GET /api/v1/jobs/{id}/events", "GET /generate"):
            self.assertIn(route, idx["routes"])
        st, h, html = self.srv.request("GET", "/generate")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))


class ZimageConfig(unittest.TestCase):
    def test_help_and_config_errors(self):
        r = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("zimage:model=DIR", r.stdout)
        self.assertIn("--max-gen-pixels", r.stdout)
        for spec, part in (("zimage", "model=DIR"), ("zimage:model=/nonexistent", "nonexistent"),
                           ("zimage:model=/tmp,device=cuda", "CUDA Z-Image backend")):
            srv = Server("--engine", spec, wait_ready=False)
            try:
                rc = srv.proc.wait(timeout=60 * SLOW)
                self.assertEqual(rc, 1)
                self.assertIn(part, srv.read_log())
            finally:
                srv.stop()
                srv.tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
