"""`pixserve generate` (Z-Image text-to-image) against the PyTorch reference.

A tiny random model (tools/zimage_reference.py make --config tiny, with the
real Qwen3 tokenizer.json from the npm test data) runs in the Hugging Face
layout and in the single-file layout (ComfyUI DiT with fused qkv and the
`model.diffusion_model.` prefix, qwen_3_4b.safetensors, FLUX's BFL-named
ae.safetensors). The DiT and the text encoder are given as plain files; the
tiny VAE's 8 GroupNorm groups are not visible in its tensors' shapes (the
real model's 32 are the default), so its ae.safetensors sits in a component
directory beside its config.json.

The token ids given to the reference come from `pixserve tokenize`, the
initial latents from the reference's `noise` (PyTorch's generator), passed to
pixserve with --latents. Tolerance: every 8-bit value of pixserve's PNG
within one level of round(255 * reference float image), and at most 1 % of
them off by one (the engine's stages agree with the reference to ~1e-6, so
only values at a rounding boundary may flip).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

from pxtest import PY, ROOT, TOOLS, make_tiny_zimage, run_pixserve

sys.path.insert(0, TOOLS)
import zimage_reference as zr  # noqa: E402

REF = os.path.join(TOOLS, "zimage_reference.py")
W, H, STEPS = 64, 48, 2
PROMPT = "a red fox in the snow, watercolour"
NEGATIVE = "blurry, low quality"


def ref(*args):
    subprocess.run([PY, REF, *args], check=True, timeout=300)


class Generate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        subprocess.run([os.path.join(ROOT, "scripts/testdata")], check=True)
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        cls.hf = make_tiny_zimage(os.path.join(d, "m"), layouts="hf,single", seed=4)
        single = os.path.join(d, "m", "single")
        # The VAE's file beside its config.json (the 8 groups of the tiny
        # one are not visible in its shapes).
        vae_dir = os.path.join(d, "single_vae")
        os.mkdir(vae_dir)
        os.symlink(os.path.join(single, "ae.safetensors"), os.path.join(vae_dir, "ae.safetensors"))
        shutil.copy(os.path.join(cls.hf, "vae", "config.json"), vae_dir)
        cls.single_args = ["--dit", os.path.join(single, "z_image_turbo.safetensors"),
                           "--text-encoder", os.path.join(single, "qwen_3_4b.safetensors"),
                           "--vae", vae_dir]
        cls.single_args += ["--tokenizer", os.path.join(cls.hf, "tokenizer", "tokenizer.json")]
        cls.latents = os.path.join(d, "init.safetensors")
        ref("noise", cls.latents, "--width", str(W), "--height", str(H), "--seed", "11")
        ids = cls.tokenize(PROMPT)
        neg = cls.tokenize(NEGATIVE)
        cls.ref_image = {}
        for cfg in (0.0, 2.5):
            out = os.path.join(d, "ref_cfg%g.safetensors" % cfg)
            args = ["run", cls.hf, "--ids", ids, "--width", str(W), "--height", str(H),
                    "--steps", str(STEPS), "--latents", cls.latents, "--cfg", str(cfg), "--out", out]
            if cfg > 0:
                args += ["--neg-ids", neg]
            ref(*args)
            t, _ = zr.load_safetensors(out)
            cls.ref_image[cfg] = t["image"].numpy()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def tokenize(cls, text):
        r = run_pixserve("tokenize", "--model", cls.hf, text)
        assert r.returncode == 0, r.stderr
        return ",".join(str(i) for i in json.loads(r.stdout)["ids"])

    def generate(self, out, model_args, *extra):
        r = run_pixserve("generate", PROMPT, "-o", out, *model_args, "--width", str(W), "--height", str(H),
                "--steps", str(STEPS), *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def check_against_reference(self, model_args, cfg):
        out = os.path.join(self.d, "out.png")
        extra = ["--latents", self.latents, "--cfg-scale", str(cfg)]
        if cfg > 0:
            extra += ["--negative-prompt", NEGATIVE]
        r = self.generate(out, model_args, *extra)
        for stage in ("text encode", "denoise", "vae decode", "total", "seed"):
            self.assertIn(stage, r.stdout)
        got = np.asarray(Image.open(out).convert("RGB")).astype(np.int32)
        want = self.ref_image[cfg]
        self.assertEqual(got.shape, want.shape)
        levels = np.abs(got - np.rint(want * 255.0).astype(np.int32))
        err = np.abs(got / 255.0 - want)
        print("  %s cfg %g: max abs err %.4f vs the float image, %d of %d values one level off"
              % ("hf" if "--model" in model_args else "single", cfg, err.max(),
                 int((levels > 0).sum()), levels.size))
        self.assertLessEqual(int(levels.max()), 1)
        self.assertLessEqual((levels > 0).mean(), 0.01)

    def test_reference_guidance_matters(self):
        # Otherwise the cfg > 0 comparisons would not show that guidance runs.
        self.assertGreater(np.abs(self.ref_image[2.5] - self.ref_image[0.0]).max(), 0.05)

    def test_hf_layout(self):
        self.check_against_reference(["--model", self.hf], 0.0)
        self.check_against_reference(["--model", self.hf], 2.5)

    def test_single_files(self):
        self.check_against_reference(self.single_args, 0.0)
        self.check_against_reference(self.single_args, 2.5)

    def test_seed(self):
        a, b = os.path.join(self.d, "a.png"), os.path.join(self.d, "b.png")
        r = self.generate(a, ["--model", self.hf], "--seed", "-1")
        seed = re.search(r"seed (\d+)", r.stdout)
        self.assertIsNotNone(seed, r.stdout)
        r = self.generate(b, ["--model", self.hf], "--seed", seed.group(1))
        self.assertIn("seed %s," % seed.group(1), r.stdout)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_help(self):
        r = run_pixserve("generate", "--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--model", "--dit", "--text-encoder", "--vae", "--tokenizer",
                     "--negative-prompt", "--width", "--height", "--steps", "--seed",
                     "--cfg-scale", "--latents", "--threads", "pos + w*(pos - neg)", "0 (default) is off"):
            self.assertIn(flag, r.stdout)
        self.assertIn("pixserve generate", run_pixserve("--help").stdout)

    def expect_error(self, args, status, *needles):
        r = run_pixserve("generate", *args)
        self.assertEqual(r.returncode, status, r.stdout + r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)

    def test_bad_inputs(self):
        out = os.path.join(self.d, "bad.png")
        base = [PROMPT, "-o", out, "--steps", "1"]
        self.expect_error(base + ["--model", self.hf, "--width", "40", "--height", "48"], 1,
                          "multiples of 16", "40x48")
        missing = os.path.join(self.d, "nosuch")
        self.expect_error(base + ["--model", missing], 1, missing)
        self.expect_error(base + ["--model", self.d], 1, "model_index.json")
        # A truncated VAE file: the loader names it.
        broken = os.path.join(self.d, "broken")
        if not os.path.exists(broken):
            shutil.copytree(self.hf, broken)
            vae = os.path.join(broken, "vae", "diffusion_pytorch_model.safetensors")
            with open(vae, "r+b") as f:
                f.truncate(os.path.getsize(vae) // 2)
        self.expect_error(base + ["--model", broken], 1, "diffusion_pytorch_model.safetensors")
        # Latents of the wrong size: expected vs found.
        self.expect_error(base + ["--model", self.hf, "--width", "32", "--height", "32",
                                  "--latents", self.latents], 1, "expected [1, 16, 4, 4]",
                          "found [1, 16, 6, 8]")
        self.expect_error(base + ["--model", self.hf, "--bogus", "1"], 2, "unknown flag")
        self.expect_error(base + ["--model", self.hf, "--cfg-scale", "-1"], 2, "--cfg-scale")
        self.expect_error(["-o", out, "--model", self.hf], 2, "prompt")
        self.expect_error(base + ["--dit", "x"], 2, "--text-encoder")
        self.expect_error([PROMPT, "-o", os.path.join(self.d, "x.gif"), "--model", self.hf], 2,
                          ".png")
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
