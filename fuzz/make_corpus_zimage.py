#!/usr/bin/python3
"""Writes the seed corpora of fuzz_gguf and fuzz_zconfig (fuzz/corpus/gguf,
fuzz/corpus/zconfig): small GGUF files of every type the loader dequantizes
(through tools/gguf_write.py) with Z-Image and llama.cpp tensor names, and
the config.json texts of tools/zimage_reference.py's tiny and full models.
Every file stays under 8 KB. Run from the repository root:
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


if __name__ == "__main__":
    main()
