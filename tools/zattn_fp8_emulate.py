#!/usr/bin/env python3
"""tools/zattn_fp8_emulate.py — what the DiT's fp8 attention's roundings
cost, emulated in double on the CPU (numpy only), for the bars of its
checks (src/engine/zimage/cuda/zattn_q8_check.h, bench/zattn_cuda_bench.c).

The same data as `zattn_cuda_bench check`'s first fp8 case (random bf16-range
values in [-2, 2], per-head RMSNorm with weights in [0.5, 1.5], random RoPE
angles), the same scales as zattn_q8.h (powers of two: Q and K from the
norm weight's bound sqrt(hd)·max|w|, V from its largest magnitude), then
the roundings added one at a time: Q and K to e4m3, V, the probabilities P
(stored as e4m3(P·448), cuDNN's scale_s), the output O. Prints
max|o − exact| / max|exact| after each.

  /usr/bin/python3 tools/zattn_fp8_emulate.py [--seq 200] [--heads 4] [--seed 1]
"""
import argparse

import numpy as np


def e4m3(x):
    """Round to e4m3 (nearest, ties to even; saturating at 448)."""
    a = np.minimum(np.abs(x), 448.0)
    e = np.maximum(np.floor(np.log2(np.maximum(a, 1e-30))), -6.0)  # subnormals below 2^-6
    step = 2.0 ** (e - 3)
    return np.sign(x) * np.round(a / step) * step  # numpy rounds halves to even


def pow2_scale(bound):
    return 2.0 ** np.floor(np.log2(448.0 / bound))


def qk_norm_rope(x, w, rng, hd):
    y = x * (1.0 / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6)) * w
    t = rng.uniform(-np.pi, np.pi, y.shape[:-1] + (hd // 2,))
    c, s = np.cos(t), np.sin(t)
    out = np.empty_like(y)
    out[..., 0::2] = y[..., 0::2] * c - y[..., 1::2] * s
    out[..., 1::2] = y[..., 1::2] * c + y[..., 0::2] * s
    return out


def attention(q, k, v, hd, round_p=None):
    logits = np.einsum("shd,thd->hst", q, k) / np.sqrt(hd)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    if round_p:
        p = round_p(p)
    return np.einsum("hst,thd->shd", p, v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seq", type=int, default=200)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    S, H, hd = a.seq, a.heads, a.head_dim
    x = rng.uniform(-2, 2, (3, S, H, hd))
    w = 1 + 0.5 * rng.uniform(-1, 1, (2, hd))
    q, k, v = qk_norm_rope(x[0], w[0], rng, hd), qk_norm_rope(x[1], w[1], rng, hd), x[2]
    exact = attention(q, k, v, hd)
    sq, sk = pow2_scale(np.sqrt(hd) * np.abs(w).max(1))
    sv = pow2_scale(np.abs(v).max())
    q8, k8, v8 = e4m3(q * sq) / sq, e4m3(k * sk) / sk, e4m3(v * sv) / sv
    p8 = lambda p: e4m3(p * 448.0) / 448.0
    m = np.abs(exact).max()
    rows = [("Q, K", attention(q8, k8, v, hd)), ("Q, K, V", attention(q8, k8, v8, hd)),
            ("Q, K, V, P", attention(q8, k8, v8, hd, p8))]
    rows.append(("Q, K, V, P, O", e4m3(rows[-1][1] * sv) / sv))
    for name, o in rows:
        print(f"rounded {name:14s} max|o - exact| / max|exact| = {np.abs(o - exact).max() / m:.3f}")


if __name__ == "__main__":
    main()
