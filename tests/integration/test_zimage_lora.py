"""`pixserve generate --lora` against the PyTorch reference with the same
LoRAs merged into its weights (tools/zimage_reference.py run --lora, which
merges W + m·(α/r)·B·A through tools/zimage_lora.py), on a tiny random model.

Two LoRAs at once: a kohya-spelled F32 one on attention, FFN and adaLN
(rank 4) at 0.85 and a ComfyUI fused-qkv BF16 one on attention (rank 2) at
-0.5; with and without guidance (the negative item carries the LoRAs too).
Tolerance as test_zimage_generate.py: every 8-bit value within one level of
round(255 * reference), at most 1 % of them off by one. Then the CLI's
errors for files and specs that do not fit.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

from pxtest import PY, ROOT, TOOLS, make_tiny_zimage, run_pixserve, zimage_ids

sys.path.insert(0, TOOLS)
import zimage_lora as zl  # noqa: E402
import zimage_reference as zr  # noqa: E402

REF = os.path.join(TOOLS, "zimage_reference.py")
LORA = os.path.join(TOOLS, "zimage_lora.py")
W, H, STEPS = 64, 48, 2
PROMPT = "a lighthouse at dusk, oil painting"
NEGATIVE = "blurry"


def tool(script, *args):
    subprocess.run([PY, script, *args], check=True, timeout=300, stdout=subprocess.DEVNULL)


class GenerateLora(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        subprocess.run([os.path.join(ROOT, "scripts/testdata")], check=True)
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        cls.hf = make_tiny_zimage(os.path.join(d, "m"), layouts="hf", seed=6)
        cls.a = os.path.join(d, "style.safetensors")
        cls.b = os.path.join(d, "fused.safetensors")
        tool(LORA, "write", cls.a, "--model", cls.hf, "--spelling", "kohya", "--rank", "4",
             "--targets", "attn,ffn,ada", "--seed", "1")
        tool(LORA, "write", cls.b, "--model", cls.hf, "--spelling", "comfy-fused", "--rank", "2",
             "--dtype", "bf16", "--seed", "2")
        cls.loras = ["--lora", cls.a + ":0.85", "--lora", cls.b + ":-0.5"]
        cls.latents = os.path.join(d, "init.safetensors")
        tool(REF, "noise", cls.latents, "--width", str(W), "--height", str(H), "--seed", "5")
        ids, neg = zimage_ids(cls.hf, PROMPT), zimage_ids(cls.hf, NEGATIVE)
        # The reference's command line with --lora once; the other two runs
        # in this process (torch's import is most of a run's time).
        out = os.path.join(d, "ref.safetensors")
        tool(REF, "run", cls.hf, "--ids", ids, "--width", str(W), "--height", str(H), "--steps",
             str(STEPS), "--latents", cls.latents, "--out", out, *cls.loras)
        cls.ref_image = {(0.0, True): zr.load_safetensors(out)[0]["image"].numpy()}
        m = zr.load_hf(cls.hf)
        lat = zr.load_safetensors(cls.latents)[0]["latents"]
        ids, neg = zr.parse_ids(ids), zr.parse_ids(neg)
        cls.ref_image[(0.0, False)] = zr.run_pipeline(m, ids, W, H, STEPS, latents=lat)["image"].numpy()
        for spec in cls.loras[1::2]:
            f, scale = zl.parse_spec(spec)
            zl.merge_into(m.dit, m.dit_cfg, f, scale)
        cls.ref_image[(2.5, True)] = zr.run_pipeline(m, ids, W, H, STEPS, neg_ids=neg, cfg_scale=2.5,
                                                    latents=lat)["image"].numpy()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def generate(self, cfg, *extra):
        out = os.path.join(self.d, "out.png")
        args = ["generate", PROMPT, "-o", out, "--model", self.hf, "--width", str(W), "--height",
                str(H), "--steps", str(STEPS), "--latents", self.latents, "--cfg-scale", str(cfg)]
        if cfg > 0:
            args += ["--negative-prompt", NEGATIVE]
        r = run_pixserve(*args, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return np.asarray(Image.open(out).convert("RGB")).astype(np.int32), r

    def check(self, cfg):
        got, r = self.generate(cfg, *self.loras)
        self.assertIn("lora %s: scale 0.85, rank 4, 31 deltas, kohya keys" % self.a, r.stderr)
        self.assertIn("lora %s: scale -0.5, rank 6, 8 deltas, comfyui keys" % self.b, r.stderr)
        want = self.ref_image[(cfg, True)]
        levels = np.abs(got - np.rint(want * 255.0).astype(np.int32))
        print("  cfg %g: max abs err %.4f vs the reference float image, %d of %d values one "
              "level off; the LoRAs move the reference image by up to %.3f"
              % (cfg, np.abs(got / 255.0 - want).max(), int((levels > 0).sum()), levels.size,
                 np.abs(want - self.ref_image[(0.0, False)]).max()))
        self.assertLessEqual(int(levels.max()), 1)
        self.assertLessEqual((levels > 0).mean(), 0.01)

    def test_matches_reference(self):
        # Otherwise the comparison would not show that the LoRAs run.
        self.assertGreater(np.abs(self.ref_image[(0.0, True)] - self.ref_image[(0.0, False)]).max(),
                           0.05)
        self.check(0.0)
        self.check(2.5)

    def test_scale_zero_is_the_base_model(self):
        plain, _ = self.generate(0.0)
        zero, _ = self.generate(0.0, "--lora", self.a + ":0")
        self.assertTrue(np.array_equal(plain, zero))

    def expect_error(self, extra, status, *needles):
        r = run_pixserve("generate", PROMPT, "-o", os.path.join(self.d, "bad.png"), "--model", self.hf,
                "--width", "32", "--height", "32", "--steps", "1", *extra)
        self.assertEqual(r.returncode, status, r.stdout + r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)

    def test_errors(self):
        missing = os.path.join(self.d, "nosuch.safetensors")
        self.expect_error(["--lora", missing + ":0.5"], 1, "--lora: ", missing)
        self.expect_error(["--lora", self.a + ":250"], 1, "scale 250 is outside -100..100")
        self.expect_error(["--lora", ":0.5"], 1, "no file name")
        self.expect_error(["--lora", self.a] * 9, 2, "at most 8 --lora")
        # a key of no weight of the model: refused with its name, nothing generated
        bad = os.path.join(self.d, "unknown.safetensors")
        t, _ = zr.load_safetensors(self.a)
        t["lora_unet_layers_7_attention_to_q.lora_down.weight"] = t[
            "lora_unet_layers_0_attention_to_q.lora_down.weight"]
        zr.save_safetensors(bad, t)
        self.expect_error(["--lora", bad], 1, "does not fit the model (1 problem): unknown key "
                          "lora_unet_layers_7_attention_to_q.lora_down.weight")
        self.assertFalse(os.path.exists(os.path.join(self.d, "bad.png")))

    def test_help(self):
        r = run_pixserve("generate", "--help")
        self.assertIn("--lora FILE[:SCALE]", r.stdout)


if __name__ == "__main__":
    unittest.main()
