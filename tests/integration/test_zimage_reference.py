"""The Z-Image PyTorch reference (tools/zimage_reference.py) itself: the
random model it writes holds the same tensors in every layout (HF shards,
single files with fused qkv and BFL VAE names), the sampler's sigmas are the
spec's, batching with masks leaves each item's DiT output as it is alone, the
conventions (interleaved RoPE as complex products, patch order) hold, and
`run` is deterministic and agrees with the in-process functions.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
PY = "/usr/bin/python3"
SCRIPT = os.path.join(TOOLS, "zimage_reference.py")
sys.path.insert(0, TOOLS)
import zimage_reference as ref  # noqa: E402

IDS = [151644, 872, 198, 9707, 1879, 151645, 198, 151644, 77091, 198]
NEG = [151644, 872, 198, 151645, 198, 151644, 77091, 198]


def tool(*args):
    r = subprocess.run([PY, SCRIPT, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


class ZImageReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory(prefix="pxzref-")
        cls.out = os.path.join(cls.tmp.name, "m")
        tool("make", cls.out, "--config", "tiny", "--seed", "3")
        cls.m = ref.load_hf(os.path.join(cls.out, "hf"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def single(self, name):
        return ref.load_safetensors(os.path.join(self.out, "single", name))[0]

    def test_hf_layout(self):
        hf = os.path.join(self.out, "hf")
        for comp, stem in (("transformer", "diffusion_pytorch_model"), ("text_encoder", "model")):
            with open(os.path.join(hf, comp, stem + ".safetensors.index.json")) as f:
                idx = json.load(f)
            files = sorted(set(idx["weight_map"].values()))
            self.assertGreaterEqual(len(files), 2)
            for fn in files:
                self.assertTrue(os.path.exists(os.path.join(hf, comp, fn)), fn)
        with open(os.path.join(hf, "transformer", "config.json")) as f:
            c = json.load(f)
        self.assertEqual(c["dim"], 64)
        self.assertEqual(c["n_refiner_layers"], 1)
        self.assertIn("all_x_embedder.2-1.weight", self.m.dit)
        self.assertEqual(list(self.m.dit["t_embedder.mlp.0.weight"].shape), [1024, 256])
        self.assertEqual(list(self.m.dit["t_embedder.mlp.2.weight"].shape), [64, 1024])
        self.assertEqual(list(self.m.text["model.embed_tokens.weight"].shape), [151936, 32])
        with open(os.path.join(hf, "scheduler", "scheduler_config.json")) as f:
            self.assertEqual(json.load(f)["shift"], 3.0)
        # The in-memory builder makes the same tensors as the files.
        mem = ref.make_weights(ref.config("tiny"), 3, "transformer")
        for k, v in mem.items():
            self.assertTrue(torch.equal(v, self.m.dit[k]), k)

    def test_single_dit_is_hf_fused(self):
        s = self.single("z_image_turbo.safetensors")
        self.assertTrue(all(k.startswith(ref.SINGLE_PREFIX) for k in s))
        s = {k[len(ref.SINGLE_PREFIX):]: v for k, v in s.items()}
        self.assertIn("norm_final.weight", s)
        used = {"norm_final.weight"}
        for k, v in self.m.dit.items():
            c = ref.dit_hf_to_canonical(k)
            used.add(c)
            if c.endswith("attention.qkv.weight"):
                b = k.rsplit(".", 2)[0]
                cat = torch.cat([self.m.dit[b + ".to_q.weight"], self.m.dit[b + ".to_k.weight"],
                                 self.m.dit[b + ".to_v.weight"]], 0)
                self.assertTrue(torch.equal(s[c], cat), c)
            else:
                self.assertTrue(torch.equal(s[c], v), c)
        self.assertEqual(used, set(s))
        self.assertIn("layers.1.attention.q_norm.weight", s)
        self.assertIn("x_embedder.weight", s)
        self.assertIn("final_layer.adaLN_modulation.1.bias", s)

    def test_single_text_and_bfl_vae(self):
        q = self.single("qwen_3_4b.safetensors")
        self.assertEqual(set(q), set(self.m.text))
        for k, v in self.m.text.items():
            self.assertTrue(torch.equal(q[k], v), k)
        ae = self.single("ae.safetensors")
        n = len(self.m.vae_cfg["block_out_channels"])
        mapped = {}
        for k, v in self.m.vae.items():
            b = ref.vae_hf_to_bfl(k, n)
            mapped[b] = k
            self.assertTrue(torch.equal(ae[b].reshape(v.shape), v), k)
        self.assertEqual(set(mapped), set(ae))
        self.assertEqual(mapped["decoder.up.3.block.0.conv1.weight"],
                         "decoder.up_blocks.0.resnets.0.conv1.weight")
        self.assertEqual(mapped["decoder.up.0.block.0.nin_shortcut.weight"],
                         "decoder.up_blocks.3.resnets.0.conv_shortcut.weight")
        self.assertEqual(mapped["decoder.up.1.upsample.conv.weight"],
                         "decoder.up_blocks.2.upsamplers.0.conv.weight")
        self.assertEqual(ae["decoder.mid.attn_1.proj_out.weight"].dim(), 4)
        self.assertEqual(mapped["decoder.norm_out.weight"], "decoder.conv_norm_out.weight")

    def test_bf16_rounding(self):
        d = os.path.join(self.tmp.name, "b")
        ref.make_model(d, ref.config("tiny"), 3, "bf16", ("hf",))
        w = ref.load_component(os.path.join(d, "hf", "transformer"))
        k = "layers.0.attention.to_q.weight"
        self.assertTrue(torch.equal(w[k], self.m.dit[k].bfloat16().float()))
        self.assertFalse(torch.equal(w[k], self.m.dit[k]))

    def test_full_config_index(self):
        d = os.path.join(self.tmp.name, "full")
        ref.make_model(d, ref.config("full"), 0, "bf16", ("hf", "single"), only_index=True)
        with open(os.path.join(d, "hf", "transformer", "config.json")) as f:
            c = json.load(f)
        self.assertEqual((c["dim"], c["n_layers"], c["n_heads"], c["cap_feat_dim"]),
                         (3840, 30, 30, 2560))
        with open(os.path.join(d, "hf", "transformer",
                               "diffusion_pytorch_model.safetensors.index.json")) as f:
            idx = json.load(f)
        self.assertEqual(idx["metadata"]["total_size"], 2 * 6154908736)  # spec's parameter count
        self.assertEqual(len(set(idx["weight_map"].values())), 3)
        cfg = ref.config("full")
        vae = sum(int(torch.tensor(s).prod()) for _, s, _ in ref.vae_entries(cfg["vae"]))
        self.assertAlmostEqual(vae / 1e6, 49.5, delta=0.1)
        # a few tensors through the streaming writer
        ents = [e for e in ref.single_dit_entries(cfg, 0)
                if e[0].endswith(("x_embedder.weight", "layers.29.attention.k_norm.weight",
                                  "norm_final.weight"))]
        p = os.path.join(d, "few.safetensors")
        ref.write_safetensors_stream(p, ents, torch.bfloat16)
        t = ref.load_safetensors(p)[0]
        self.assertEqual(list(t[ref.SINGLE_PREFIX + "x_embedder.weight"].shape), [3840, 64])
        self.assertEqual(t[ref.SINGLE_PREFIX + "norm_final.weight"].dtype, torch.bfloat16)

    def test_text_encoder_causal(self):
        full, layers = ref.qwen3_forward(self.m, IDS, all_layers=True)
        part, _ = ref.qwen3_forward(self.m, IDS[:4])
        self.assertLess((full[:4] - part).abs().max().item(), 1e-5)
        self.assertEqual(len(layers), 3)
        self.assertTrue(torch.equal(full, layers[1]))  # hidden_states[-2]
        self.assertGreater((layers[2] - layers[1]).abs().max().item(), 0.1)

    def test_text_encoder_batch(self):
        # The benchmark's PyTorch peer encodes a batch of prompts at once:
        # each row must be what the prompt gives alone.
        other = [151644, 872, 198, 1879, 9707, 151645, 198, 151644, 77091, 151645]
        feats, layers = ref.qwen3_forward_batch(self.m, [IDS, other], all_layers=True)
        for b, ids in enumerate((IDS, other)):
            one, _ = ref.qwen3_forward(self.m, ids)
            self.assertLess((feats[b] - one).abs().max().item(), 1e-5)
        self.assertGreater((feats[0] - feats[1]).abs().max().item(), 1e-2)
        self.assertEqual(list(layers[2].shape), [2, len(IDS), 32])
        with self.assertRaises(ValueError):
            ref.qwen3_forward_batch(self.m, [IDS, IDS[:4]])

    def test_vae_batch_and_dtype(self):
        g = torch.Generator().manual_seed(5)
        lat = torch.randn(2, 16, 4, 6, generator=g)
        both = ref.vae_decode_images(self.m, lat)
        self.assertEqual(list(both.shape), [2, 3, 32, 48])
        for b in range(2):
            one = ref.vae_decode(self.m, lat[b:b + 1])
            self.assertLess((both[b].permute(1, 2, 0) - one).abs().max().item(), 1e-5)
        # channels_last input and weights (the reshape in the mid attention)
        cl = ref.vae_decode_images(self.m, lat.contiguous(memory_format=torch.channels_last))
        self.assertLess((cl - both).abs().max().item(), 1e-5)
        # a bf16 copy of the weights decodes in bf16, near the fp32 decode
        bf = type(self.m).__new__(type(self.m))
        bf.__dict__.update(self.m.__dict__)
        bf.vae = {k: v.to(torch.bfloat16) for k, v in self.m.vae.items()}
        half = ref.vae_decode_images(bf, lat)
        self.assertEqual(half.dtype, torch.bfloat16)
        self.assertLess((half.float() - both).abs().max().item(), 0.1)

    def test_sigmas(self):
        want = [1.0, 0.9545, 0.9, 0.8333, 0.75, 0.6429, 0.5, 0.3, 0.0]
        got = ref.sigmas(8, 3.0).tolist()
        self.assertEqual(len(got), 9)
        for a, b in zip(got, want):
            self.assertAlmostEqual(a, b, delta=6e-5)

    def test_rope_is_complex_product(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, 5, 2, 32, generator=g)
        pos = torch.tensor([[1, 0, 0], [7, 3, 4], [0, 0, 0], [40, 1, 9], [3, 2, 1]])
        cos, sin = ref.rope_cos_sin(pos, [8, 12, 12], 256.0)
        y = ref.rope_interleaved(x, cos[None], sin[None])
        fc = torch.polar(torch.ones_like(cos), torch.atan2(sin, cos))
        z = torch.view_as_real(torch.view_as_complex(x.reshape(1, 5, 2, 16, 2)) *
                               fc[None, :, None, :]).reshape(1, 5, 2, 32)
        self.assertLess((y - z).abs().max().item(), 1e-5)
        # axis 0 of position 7 turns the first pair by 7 radians
        self.assertAlmostEqual(cos[1, 0].item(), torch.cos(torch.tensor(7.0)).item(), places=5)

    def test_patch_order(self):
        lat = torch.arange(16 * 4 * 6, dtype=torch.float32).reshape(16, 4, 6)
        t = ref.patchify(lat, 2)
        self.assertEqual(list(t.shape), [6, 64])
        # token (h=1, w=2), feature (ph=1, pw=0, c=5)
        self.assertEqual(t[1 * 3 + 2, (1 * 2 + 0) * 16 + 5].item(), lat[5, 3, 4].item())
        self.assertTrue(torch.equal(ref.unpatchify(t, 16, 4, 6, 2), lat))

    def test_batch_masking(self):
        g = torch.Generator().manual_seed(7)
        c1 = torch.randn(5, 32, generator=g)     # pads to 32
        c2 = torch.randn(40, 32, generator=g)    # pads to 64
        l1 = torch.randn(16, 8, 12, generator=g)  # 24 image tokens + 8 pads
        l2 = torch.randn(16, 8, 12, generator=g)
        t = torch.tensor([123.5, 123.5])
        both = ref.dit_forward(self.m, [l1, l2], t, [c1, c2])
        a = ref.dit_forward(self.m, [l1], t[:1], [c1])[0]
        b = ref.dit_forward(self.m, [l2], t[:1], [c2])[0]
        self.assertLess((both[0] - a).abs().max().item(), 1e-4)
        self.assertLess((both[1] - b).abs().max().item(), 1e-4)
        self.assertGreater((a - b).abs().max().item(), 1e-2)
        # the pads matter: a different pad token changes the output
        old = self.m.dit["cap_pad_token"].clone()
        try:
            self.m.dit["cap_pad_token"] += 0.5
            a2 = ref.dit_forward(self.m, [l1], t[:1], [c1])[0]
        finally:
            self.m.dit["cap_pad_token"] = old
        self.assertGreater((a2 - a).abs().max().item(), 1e-3)

    def test_run_deterministic(self):
        st = os.path.join(self.tmp.name, "st.safetensors")
        lat = os.path.join(self.tmp.name, "lat.safetensors")
        ref.save_safetensors(lat, {"latents": ref.noise(48, 32, 11)})
        tool("run", os.path.join(self.out, "hf"), "--ids", ",".join(map(str, IDS)),
             "--neg-ids", ",".join(map(str, NEG)), "--cfg", "2.5", "--width", "48", "--height",
             "32", "--steps", "3", "--latents", lat, "--out", st, "--dump-encoder",
             "--dump-dit", "--dump-vae")
        cli = ref.load_safetensors(st)[0]
        mem = ref.run_pipeline(self.m, IDS, 48, 32, 3, seed=11, neg_ids=NEG, cfg_scale=2.5,
                               dump_encoder=True, dump_dit=True, dump_vae=True)
        self.assertEqual(list(cli), list(mem))
        for k in mem:
            self.assertTrue(torch.equal(cli[k], mem[k]), k)
        self.assertEqual(list(cli["image"].shape), [32, 48, 3])
        self.assertEqual(list(cli["init.latent"].shape), [1, 16, 4, 6])
        self.assertTrue(torch.equal(cli["text.features"], cli["text.layer.1"]))
        self.assertEqual(cli["dit.t0"].item(), 0.0)
        im = cli["image"]
        self.assertTrue(0.0 <= im.min().item() and im.max().item() <= 1.0)
        self.assertGreater(im.std().item(), 0.01)
        # Euler with CFG by hand for the first step
        sg = cli["sigmas"]
        pos, neg = cli["dit.out0"], cli["dit.neg_out0"]
        x1 = cli["init.latent"] - (sg[1] - sg[0]) * (pos + 2.5 * (pos - neg))
        self.assertLess((x1 - cli["step.1.latent"]).abs().max().item(), 1e-6)
        # every step's DiT output is the DiT on that step's inputs (alone here,
        # in a batch with the negative there: equal up to GEMM rounding)
        x2 = cli["step.2.latent"][0]
        o = ref.dit_forward(self.m, [x2], cli["dit.t2"], [cli["text.features"]])[0]
        self.assertLess((o[None] - cli["dit.out2"]).abs().max().item(), 1e-5)
        self.assertEqual(list(cli["dit0.layer.1"].shape), [32 + 32, 64])  # 6+26 image, 10+22 text
        self.assertEqual(cli["dit0.pos"][:6, 0].tolist(), [33.0] * 6)
        self.assertEqual(cli["dit0.pos"][:6, 1:].tolist(),
                         [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
        self.assertEqual(cli["dit0.pos"][6:32].abs().sum().item(), 0.0)
        self.assertEqual(cli["dit0.pos"][32:, 0].tolist(), [float(i) for i in range(1, 33)])
        self.assertEqual(list(cli["vae.up.0"].shape), [1, 32, 8, 12])
        pert = dict(cli, image=cli["image"] + 0.01, **{"dit.out0": cli["dit.out0"][0]})
        rows = {k: (ok, rel) for k, ok, _, rel in ref.compare(cli, pert)}
        self.assertEqual(rows["text.features"], (True, 0.0))
        self.assertEqual(rows["dit.out0"], (True, 0.0))  # [16, h, w] against [1, 16, h, w]
        self.assertGreater(rows["image"][1], 0.005)
        again = ref.run_pipeline(self.m, IDS, 48, 32, 3, seed=11, neg_ids=NEG, cfg_scale=2.5,
                                 dump_encoder=True, dump_dit=True, dump_vae=True)
        for k in mem:
            self.assertTrue(torch.equal(again[k], mem[k]), k)


if __name__ == "__main__":
    unittest.main()
