"""The LaMa engine end to end, with random weights made at test time by the
PyTorch reference (tools/lama_reference.py, tiny configuration):

- the converter turns a Lightning checkpoint and a TorchScript file (both
  shaped like the public releases) into the same safetensors tensors, and
  refuses what is not a LaMa generator;
- `pixserve inpaint --engine lama --weights` and the API (two engines loaded,
  chosen per request) give the reference predictor's bytes;
- the precision emulator (tools/lama_precision_emulate.py) follows the
  CUDA engine's dataflow: unrounded, it gives the module's prediction, and
  its roundings order the precisions as their mantissas do.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from pxtest import BIN, Server, b64, box_mask, decode, encode, photo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
PY = "/usr/bin/python3"
sys.path.insert(0, TOOLS)
import lama_reference as ref  # noqa: E402


def tool(*args):
    return subprocess.run([PY, *args], capture_output=True, text=True, timeout=300)


class PrecisionEmulator(unittest.TestCase):
    def emulate(self, precisions, *extra):
        """The tiny model's two synthetic cases: (rows, summaries by impl)."""
        r = tool(os.path.join(TOOLS, "lama_precision_emulate.py"), "--config", "tiny", "--seed",
                 "3", "--synth", "--precisions", precisions, "--threads", "2", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(x) for x in r.stdout.splitlines()]
        return rows, {x["impl"]: x for x in rows if x.get("summary")}

    def test_dataflow_and_roundings(self):
        rows, summ = self.emulate("fp32,tf32,bf16,fp16,fp16w,torch-tf32")
        self.assertEqual(len([x for x in rows if not x.get("summary")]), 2 * 6)
        # Folded BatchNorm, the fused order and the explicit inverse FFT
        # reproduce the module (fp32 sums in another order: ~1e-6).
        self.assertLess(summ["fp32"]["max_abs"], 1e-4)
        # TF32 and fp16 (10-bit mantissas) stay far below bf16 (7 bits).
        for p in ("tf32", "fp16", "fp16w", "torch-tf32"):
            self.assertGreater(summ[p]["mean_abs"], 10 * summ["fp32"]["mean_abs"])
            self.assertLess(summ[p]["mean_abs"], summ["bf16"]["mean_abs"] / 3)
        self.assertTrue(summ["torch-tf32"]["gate_pass"])  # the bar passes itself
        self.assertFalse(summ["bf16"]["gate_pass"])
        # The stem and head as cuDNN would run them: in fp32 the head's
        # zero-padded interior with its exactly recomputed 3-pixel border
        # is the reflection-padded convolution, so fp32 stays exact; a
        # border off by one pixel, or the bias twice, would not.
        rows, cud = self.emulate("fp32,tf32,fp16w,torch-tf32", "--stem-head", "cudnn")
        self.assertEqual({x["stem_head"] for x in rows}, {"cudnn"})
        self.assertLess(cud["fp32"]["max_abs"], 1e-4)
        for p in ("tf32", "fp16w"):
            self.assertGreater(cud[p]["mean_abs"], 10 * cud["fp32"]["mean_abs"])
            self.assertLess(cud[p]["mean_abs"], 3 * summ[p]["mean_abs"])
        # Where the 16-bit bias is added: in fp32 before the one store is
        # nearest the module; rounded to fp16 in cuDNN's epilogue (the
        # engine; the default) and the sum stored before an fp32 bias (no
        # fused epilogue) are further, each its own way (on big-lama the
        # latter is much further; on this tiny model they are close); fp32
        # is exact in every mode.
        _, ex = self.emulate("fp32,fp16w", "--bias", "exact")
        _, un = self.emulate("fp32,fp16w", "--bias", "unfused")
        for m in (ex, un):
            self.assertLess(m["fp32"]["max_abs"], 1e-4)
        self.assertLess(ex["fp16w"]["mean_abs"], summ["fp16w"]["mean_abs"])
        self.assertLess(ex["fp16w"]["mean_abs"], un["fp16w"]["mean_abs"])
        self.assertNotEqual(summ["fp16w"]["mean_abs"], un["fp16w"]["mean_abs"])
        bad = tool(os.path.join(TOOLS, "lama_precision_emulate.py"), "--synth", "--precisions",
                   "fp8")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("unknown precision", bad.stderr)


class Lama(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pxlama-")
        d = cls.tmp.name
        cls.orig = os.path.join(d, "orig.safetensors")
        cls.ckpt = os.path.join(d, "best.ckpt")
        cls.jit = os.path.join(d, "big-lama.pt")
        r = tool(os.path.join(TOOLS, "lama_reference.py"), "weights", "--config", "tiny", "--seed",
                 "5", "--out", cls.orig, "--ckpt", cls.ckpt, "--torchscript", cls.jit)
        assert r.returncode == 0, r.stderr
        cls.weights = os.path.join(d, "lama.safetensors")
        r = tool(os.path.join(TOOLS, "lama_convert.py"), cls.ckpt, cls.weights)
        assert r.returncode == 0, r.stderr
        # A photograph with two holes, not a multiple of 8 in either side.
        cls.img = photo("chelsea.png", (99, 70))
        cls.mask = box_mask(70, 99, [(20, 10, 45, 40), (60, 35, 90, 60)])
        cls.ip, cls.mp = os.path.join(d, "in.png"), os.path.join(d, "mask.png")
        with open(cls.ip, "wb") as f:
            f.write(encode(cls.img))
        with open(cls.mp, "wb") as f:
            f.write(encode(cls.mask))
        refp = os.path.join(d, "ref.png")
        r = tool(os.path.join(TOOLS, "lama_reference.py"), "infer", "--weights", cls.orig, cls.ip,
                 cls.mp, refp)
        assert r.returncode == 0, r.stderr
        with open(refp, "rb") as f:
            cls.ref = decode(f.read())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assertMatchesReference(self, out):
        self.assertEqual(out.shape, self.img.shape)
        hole = self.mask > 0
        self.assertTrue(np.array_equal(out[~hole], self.img[~hole]), "pixels outside the mask changed")
        # fp32 differences of ~1e-6 can move a value across a quantisation
        # step: allow one level on a few pixels, nothing more.
        d = np.abs(out.astype(int) - self.ref.astype(int))
        self.assertLessEqual(d.max(), 1)
        self.assertLessEqual((d > 0).mean(), 0.01)
        self.assertGreater(np.abs(out[hole].astype(int) - self.img[hole].astype(int)).mean(), 1)

    def test_convert_both_formats(self):
        want, _ = ref.load_safetensors(self.orig)
        for src in (self.ckpt, self.jit):
            dst = os.path.join(self.tmp.name, os.path.basename(src) + ".safetensors")
            r = tool(os.path.join(TOOLS, "lama_convert.py"), src, dst)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("2 blocks", r.stdout)
            got, meta = ref.load_safetensors(dst)
            self.assertEqual(list(got), list(want))  # names and order
            for k in want:
                self.assertTrue(torch.equal(got[k], want[k]), k)
            self.assertEqual(meta["format"], "pixserve-lama")
            self.assertEqual((meta["ngf"], meta["n_blocks"], meta["n_downsampling"], meta["ratio_g"]),
                             ("8", "2", "3", "0.75"))

    def test_convert_rejects(self):
        d = self.tmp.name
        junk = os.path.join(d, "junk.bin")
        with open(junk, "wb") as f:
            f.write(b"not a checkpoint at all")
        other = os.path.join(d, "other.ckpt")
        torch.save({"state_dict": {"encoder.0.weight": torch.zeros(3)}}, other)
        # A generator with one tensor missing.
        sd, _ = ref.load_safetensors(self.orig)
        del sd["model.5.conv1.ffc.convg2g.fu.bn.running_var"]
        broken = os.path.join(d, "broken.ckpt")
        torch.save({"state_dict": {"generator." + k: v for k, v in sd.items()}}, broken)
        # A generator with a tensor of the wrong shape.
        sd, _ = ref.load_safetensors(self.orig)
        sd["model.1.ffc.convl2l.weight"] = torch.zeros(8, 4, 5, 5)
        shaped = os.path.join(d, "shaped.ckpt")
        torch.save({"state_dict": sd}, shaped)
        cases = [(junk, "neither a PyTorch checkpoint"),
                 (os.path.join(d, "missing.ckpt"), "no such file"),
                 (other, "no LaMa generator found"),
                 (broken, "missing ['model.5.conv1.ffc.convg2g.fu.bn.running_var']"),
                 (shaped, "expected a 7x7 convolution")]
        # The command line once (exit status, message, no traceback), the
        # rest in-process: each run of the tool pays for importing torch.
        r = tool(os.path.join(TOOLS, "lama_convert.py"), junk, os.path.join(d, "x.safetensors"))
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        self.assertIn("lama_convert: %s: neither a PyTorch checkpoint" % junk, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        import lama_convert
        for src, msg in cases[1:]:
            with self.assertRaises(lama_convert.ConvertError) as cm:
                lama_convert.convert(src, os.path.join(d, "x.safetensors"))
            self.assertIn(msg, str(cm.exception))
        self.assertFalse(os.path.exists(os.path.join(d, "x.safetensors")))

    def test_cli(self):
        op = os.path.join(self.tmp.name, "out.png")
        r = subprocess.run([BIN, "inpaint", self.ip, self.mp, "-o", op, "--engine", "lama",
                            "--weights", self.weights], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("engine lama", r.stdout)
        with open(op, "rb") as f:
            self.assertMatchesReference(decode(f.read()))
        r = subprocess.run([BIN, "inpaint", self.ip, self.mp, "-o", op, "--engine", "lama"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--weights", r.stderr)
        r = subprocess.run([BIN, "inpaint", self.ip, self.mp, "-o", op, "--engine", "lama",
                            "--weights", self.ckpt], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("safetensors", r.stderr)

    def test_api_two_engines(self):
        srv = Server("--engine", "classic", "--engine", "lama", "--weights", self.weights)
        try:
            st, e = srv.get_json("/api/v1/engines")
            self.assertEqual(st, 200)
            self.assertEqual(e["default"], "classic")
            by = {x["name"]: x for x in e["engines"]}
            self.assertEqual(set(by), {"classic", "lama"})
            cfg = by["lama"]["config"]
            self.assertEqual((cfg["ngf"], cfg["n_blocks"], cfg["n_downsampling"]), (8, 2, 3))
            self.assertEqual(cfg["weights"], self.weights)
            self.assertIn("weights", by["lama"]["capabilities"])
            mem = by["lama"]["memory_estimate_bytes"]
            self.assertGreater(mem["1024x1024"], 3 * mem["512x512"] // 2)
            body = {"image": b64(encode(self.img)), "mask": b64(encode(self.mask)), "engine": "lama"}
            st, h, data = srv.post_json("/api/v1/inpaint", body, timeout=120)
            self.assertEqual(st, 200, data[:300])
            self.assertMatchesReference(decode(data))
            body["engine"] = "classic"
            st, h, data = srv.post_json("/api/v1/inpaint", body, timeout=120)
            self.assertEqual(st, 200, data[:300])
            body["engine"] = "lama"
            body["method"] = "patchmatch"
            st, h, data = srv.post_json("/api/v1/inpaint", body)
            self.assertEqual(st, 400)
            self.assertIn("default", json.loads(data)["error"]["message"])
        finally:
            rc = srv.stop()
            with open(srv.log_path, errors="replace") as f:
                log = f.read()
            srv.tmp.cleanup()
            self.assertEqual(rc, 0, log[-3000:])


if __name__ == "__main__":
    unittest.main()
