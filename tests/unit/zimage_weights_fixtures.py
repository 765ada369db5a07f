#!/usr/bin/python3
"""zimage_weights_fixtures.py — broken and mismatched weight files for
zimage_weights_test.c, made from the tiny model of tools/zimage_reference.py
(`make M --layouts hf,single`), and the other spellings of good files users
bring. Writes M/bad/... and M/good/...; numpy only.

  usage: zimage_weights_fixtures.py M
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import gguf_write  # noqa: E402  (its numpy safetensors reader)

DT = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}


def write_st(path, tensors):
    header, off, blobs = {}, 0, []
    for name, a in tensors:
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for b in blobs:
            f.write(b)


def copy_hf(m, name):
    d = os.path.join(m, "bad", name)
    shutil.copytree(os.path.join(m, "hf", "transformer"), d)
    idx = os.path.join(d, "diffusion_pytorch_model.safetensors.index.json")
    with open(idx) as f:
        return d, idx, json.load(f)


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


LLAMA = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
         "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
         "post_attention_layernorm": "ffn_norm"}


def llama_name(n):
    """HF Qwen3 name -> llama.cpp's GGUF name."""
    n = n[len("model."):]
    if n == "embed_tokens.weight":
        return "token_embd.weight"
    if n == "norm.weight":
        return "output_norm.weight"
    _, i, rest = n.split(".", 2)
    return "blk.%s.%s.weight" % (i, LLAMA[rest[:-len(".weight")]])


def good_variants(m):
    good = os.path.join(m, "good")
    os.makedirs(good, exist_ok=True)
    p = "model.diffusion_model."
    dit = gguf_write.read_safetensors(os.path.join(m, "single", "z_image_turbo.safetensors"))
    write_st(os.path.join(good, "dit_noprefix.safetensors"),
             [(n[len(p):], a) for n, a in dit if n != p + "norm_final.weight"])
    hf = []
    for fn in sorted(os.listdir(os.path.join(m, "hf", "transformer"))):
        if fn.endswith(".safetensors"):
            hf += gguf_write.read_safetensors(os.path.join(m, "hf", "transformer", fn))
    write_st(os.path.join(good, "dit_diffusers.safetensors"), hf)
    text = gguf_write.read_safetensors(os.path.join(m, "single", "qwen_3_4b.safetensors"))
    write_st(os.path.join(good, "qwen_noprefix.safetensors"), [(n[len("model."):], a) for n, a in text])
    write_st(os.path.join(good, "qwen_llama.safetensors"), [(llama_name(n), a) for n, a in text])


def main():
    m = sys.argv[1]
    good_variants(m)
    bad = os.path.join(m, "bad")
    os.makedirs(bad, exist_ok=True)
    dit = gguf_write.read_safetensors(os.path.join(m, "single", "z_image_turbo.safetensors"))
    p = "model.diffusion_model."
    write_st(os.path.join(bad, "unknown.safetensors"),
             dit + [("foo.bar.weight", np.zeros(3, np.float32)),
                    (p + "layers.0.attention.to_x.weight", np.zeros(3, np.float32))])
    write_st(os.path.join(bad, "dup.safetensors"), dit + [("x_embedder.weight", dit[0][1])])
    write_st(os.path.join(bad, "int.safetensors"),
             [(n, a.astype(np.int32) if n == p + "x_pad_token" else a) for n, a in dit])

    shards = ["diffusion_pytorch_model-00001-of-00002.safetensors",
              "diffusion_pytorch_model-00002-of-00002.safetensors"]
    # listed in the wrong shard
    d, idx, j = copy_hf(m, "wrong_shard")
    j["weight_map"]["x_pad_token"] = [s for s in shards if s != j["weight_map"]["x_pad_token"]][0]
    save_json(idx, j)
    # not listed at all
    d, idx, j = copy_hf(m, "unlisted")
    del j["weight_map"]["cap_pad_token"]
    save_json(idx, j)
    # held by both shards
    d, idx, j = copy_hf(m, "both")
    home = j["weight_map"]["x_pad_token"]
    other = [s for s in shards if s != home][0]
    t = gguf_write.read_safetensors(os.path.join(d, other))
    x = dict(gguf_write.read_safetensors(os.path.join(d, home)))["x_pad_token"]
    write_st(os.path.join(d, other), t + [("x_pad_token", x)])
    # a shard file gone
    d, idx, j = copy_hf(m, "no_shard")
    os.remove(os.path.join(d, shards[1]))
    # to_k of one block missing (from its shard and the index)
    d, idx, j = copy_hf(m, "no_to_k")
    k = "layers.0.attention.to_k.weight"
    sh = j["weight_map"].pop(k)
    save_json(idx, j)
    t = gguf_write.read_safetensors(os.path.join(d, sh))
    write_st(os.path.join(d, sh), [(n, a) for n, a in t if n != k])
    # a shard name that leaves the directory
    d, idx, j = copy_hf(m, "escape")
    j["weight_map"]["x_pad_token"] = "../x.safetensors"
    save_json(idx, j)
    # no config.json; two safetensors files and no index
    d, idx, j = copy_hf(m, "no_config")
    os.remove(os.path.join(d, "config.json"))
    d, idx, j = copy_hf(m, "no_index")
    os.remove(idx)


if __name__ == "__main__":
    main()
