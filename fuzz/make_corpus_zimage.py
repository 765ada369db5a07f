#!/usr/bin/python3
"""Writes the seed corpora of fuzz_gguf, fuzz_zconfig and fuzz_lora
(fuzz/corpus/gguf, fuzz/corpus/zconfig, fuzz/corpus/lora): small GGUF files
of every type the loader dequantizes (through tools/gguf_write.py) with
Z-Image and llama.cpp tensor names, the config.json texts of
tools/zimage_reference.py's tiny and full models, and LoRAs in each key
spelling (tools/zimage_lora.py) for the model fuzz_lora.c assumes.
Every file stays under 16 KB. Run from the repository root:
    /usr/bin/python3 fuzz/make_corpus_zimage.py
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, "tools")
import gguf_write  # noqa: E402

G = "fuzz/corpus/gguf"
Z = "fuzz/corpus/zconfig"
L = "fuzz/corpus/lora"
# fuzz_lora.c's model: dim 16 (FFN 42, t_dim 16), one refiner block of each
# kind, one joint layer
LORA_DIT = dict(dim=16, n_heads=2, n_layers=1, n_refiner_layers=1, all_patch_size=[2],
                all_f_patch_size=[1], in_channels=16)


def lora_corpus():
    import torch
    import zimage_lora
    from zimage_weights import save_safetensors
    os.makedirs(L, exist_ok=True)
    for name, sp, rank, targets, dt, alpha in (
            ("peft_all_f32", "peft", 1, ("attn", "ffn", "ada"), torch.float32, 1.0),
            ("kohya_attn_bf16", "kohya", 1, ("attn",), torch.bfloat16, None),
            ("comfy_fused_f16", "comfy-fused", 1, ("attn", "ada"), torch.float16, 0.5),
            ("bare_ffn", "peft-bare", 2, ("ffn",), torch.float32, 3.0)):
        save_safetensors(os.path.join(L, name),
                         zimage_lora.lora_tensors(LORA_DIT, sp, rank, targets, dt, alpha, 1))


def main():
    os.makedirs(G, exist_ok=True)
    os.makedirs(Z, exist_ok=True)
    rng = np.random.default_rng(7)
    types = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K",
             "Q5_K", "Q6_K"]
    gguf_write.write_gguf(os.path.join(G, "types"),
                          [("t_%s" % t, rng.standard_normal((1, 256)).astype(np.float32), t)
                           for t in types], 3, None, True)
    gguf_write.write_gguf(os.path.join(G, "v2_align64"),
                          [("x_embedder.weight", rng.standard_normal((2, 32)).astype(np.float32), "Q8_0"),
                           ("model.diffusion_model.layers.0.attention.qkv.weight",
                            rng.standard_normal((3, 32)).astype(np.float32), "Q4_0")], 2, 64, False)
    gguf_write.write_gguf(os.path.join(G, "llama_names"),
                          [("token_embd.weight", rng.standard_normal((4, 32)).astype(np.float32), "F16"),
                           ("blk.0.attn_q.weight", rng.standard_normal((1, 256)).astype(np.float32), "Q6_K"),
                           ("blk.0.attn_k_norm.weight", rng.standard_normal(16).astype(np.float32), "F32"),
                           ("decoder.up.3.block.0.nin_shortcut.weight",
                            rng.standard_normal((2, 2, 1, 1)).astype(np.float32), "F32")], 3, None, False)
    with tempfile.TemporaryDirectory() as d:
        for cfg in ("tiny", "full"):
            subprocess.check_call(["/usr/bin/python3", "tools/zimage_reference.py", "make",
                                   os.path.join(d, cfg), "--config", cfg, "--layouts", "hf",
                                   "--only-index"], stdout=subprocess.DEVNULL)
            for comp, fn in (("transformer", "config.json"), ("text_encoder", "config.json"),
                             ("vae", "config.json"), ("scheduler", "scheduler_config.json")):
                with open(os.path.join(d, cfg, "hf", comp, fn), "rb") as f:
                    data = f.read()
                with open(os.path.join(Z, "%s_%s" % (cfg, comp)), "wb") as f:
                    f.write(data)
    lora_corpus()


if __name__ == "__main__":
    main()
