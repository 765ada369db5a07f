"""tools/zimage_fp8_emulate.py's pieces that its conclusions rest on: the
e4m3 rounding keeps a row's small values to e4m3's relative precision when
one value of the row is thousands of times larger (per-row scales), and
add_outliers gives the fp8 linears' inputs outlier channels without
changing what the model computes.
"""
import os
import sys
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import zimage_fp8_emulate as fe  # noqa: E402
import zimage_reference as zr  # noqa: E402
from zimage_weights import config, model_from_config  # noqa: E402


class FP8Emulate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)

    def test_e4m3_grid(self):
        v = torch.tensor([0.0, 1.0, 1.0625, 1.1875, 300.0, 449.0, -1000.0, 2.0 ** -9, 2.0 ** -11])
        q = fe.e4m3(v)
        # 1.0625 is half way between 1 and 1.125: to even (1.0); 1.1875 rounds to 1.25
        want = [0.0, 1.0, 1.0, 1.25, 288.0, 448.0, -448.0, 2.0 ** -9, 0.0]
        self.assertEqual(q.tolist(), want)

    def test_row_with_an_outlier(self):
        g = torch.Generator().manual_seed(2)
        x = torch.randn(4, 256, generator=g)
        for factor in (1.0, 100.0, 1000.0):
            y = x.clone()
            y[:, 7] *= factor
            q = fe.fake_quant_rows(y)
            rest = torch.cat([torch.arange(7), torch.arange(8, 256)])
            rel = ((q[:, rest] - y[:, rest]).abs() / y[:, rest].abs().clamp(min=1e-3)).median()
            self.assertLess(rel.item(), 0.04, factor)  # 3 fraction bits: <= 1/16, ~1/48 typical

    def test_add_outliers_keeps_the_function(self):
        cfg = config("tiny")
        a, b = model_from_config(cfg, 5), model_from_config(cfg, 5)
        fe.add_outliers(b, 300.0, 3, 5)
        n1 = "layers.0.attention_norm1.weight"
        self.assertGreater((b.dit[n1] / a.dit[n1]).max().item(), 299.0)
        w3 = "layers.0.feed_forward.w3.weight"
        self.assertGreater((b.dit[w3].abs().amax(1) / a.dit[w3].abs().amax(1)).max().item(), 299.0)
        ids, lat = list(range(100, 120)), zr.noise(32, 32, 3)
        ra = zr.run_pipeline(a, ids, 32, 32, 2, latents=lat)
        rb = zr.run_pipeline(b, ids, 32, 32, 2, latents=lat)
        d = (ra["final.latent"] - rb["final.latent"]).abs().max() / ra["final.latent"].abs().max()
        self.assertLess(d.item(), 1e-4)


if __name__ == "__main__":
    unittest.main()
