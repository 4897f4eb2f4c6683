#!/usr/bin/python3
"""Fixtures for pkg/nn/vit_test.go: an independent PyTorch implementation of the ViT in cgo/vit.cpp.

Run from pkg/nn with Debian's python3 (torch 1.13): /usr/bin/python3 testdata/gen_vit.py

Two flavours, each a small model with fixed random weights, saved under spreadtrain's parameter names
(testdata/vit_<flavour>.safetensors) with an input batch and the eval-mode output
(testdata/vit_<flavour>_io.safetensors: "x", "want"):

- reference: written the way the reference code (HazyResearch/thanos-code) computes it: patches
  flattened in (row, col, channel) order and projected by a Linear, then LayerNorm; a fused bias-free
  qkv Linear split as (3, heads, head_dim); attention by einsum; no output projection. The Linear
  patch weight is permuted into our conv layout ([d, C, p, p]) when saved.
- standard: torch.nn.MultiheadAttention (batch_first, with in_proj bias and out_proj), a Conv2d patch
  embedding without LayerNorm, and a non-square 1-channel input.

Weights are re-drawn at scale (biases, LayerNorm affine, tokens all non-trivial) so that any wiring
error shows in the output.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class RefAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)

    def forward(self, x):
        b, s, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).view(b, s, 3, h, d // h).unbind(2)  # each b s h e
        logits = torch.einsum("bshe,bthe->bhst", q, k) / math.sqrt(d // h)
        out = torch.einsum("bhst,bthe->bshe", logits.softmax(-1), v)
        return out.reshape(b, s, d)


class StdAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.mha = nn.MultiheadAttention(d, heads, bias=True, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


class Block(nn.Module):
    def __init__(self, d, heads, mlp, standard):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = StdAttention(d, heads) if standard else RefAttention(d, heads)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, mlp)
        self.fc2 = nn.Linear(mlp, d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, h, w, c, patch, d, depth, heads, mlp, standard):
        super().__init__()
        self.patch, self.standard = patch, standard
        n = (h // patch) * (w // patch)
        if standard:
            self.embed = nn.Conv2d(c, d, patch, stride=patch)
        else:
            self.embed = nn.Linear(patch * patch * c, d)
            self.embed_norm = nn.LayerNorm(d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, d))
        self.blocks = nn.ModuleList([Block(d, heads, mlp, standard) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.patch
        if self.standard:
            t = self.embed(x).flatten(2).transpose(1, 2)
        else:
            # b c (gh p) (gw q) -> b (gh gw) (p q c)
            t = x.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)
            t = self.embed_norm(self.embed(t))
        t = torch.cat([self.cls.expand(b, -1, -1), t], 1) + self.pos
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]

    def spreadtrain_state(self):
        """The state under cgo/vit.cpp's names."""
        out = {}
        if self.standard:
            out["patch_embed.proj.weight"] = self.embed.weight
        else:
            d = self.embed.weight.shape[0]
            c = self.embed.weight.shape[1] // (self.patch * self.patch)
            out["patch_embed.proj.weight"] = self.embed.weight.view(d, self.patch, self.patch, c).permute(0, 3, 1, 2)
            out["patch_embed.norm.weight"] = self.embed_norm.weight
            out["patch_embed.norm.bias"] = self.embed_norm.bias
        out["patch_embed.proj.bias"] = self.embed.bias
        out["cls_token"] = self.cls
        out["pos_embed"] = self.pos
        for i, blk in enumerate(self.blocks):
            pre = f"blocks.{i}."
            out[pre + "norm1.weight"] = blk.norm1.weight
            out[pre + "norm1.bias"] = blk.norm1.bias
            if self.standard:
                out[pre + "attn.qkv.weight"] = blk.attn.mha.in_proj_weight
                out[pre + "attn.qkv.bias"] = blk.attn.mha.in_proj_bias
                out[pre + "attn.proj.weight"] = blk.attn.mha.out_proj.weight
                out[pre + "attn.proj.bias"] = blk.attn.mha.out_proj.bias
            else:
                out[pre + "attn.qkv.weight"] = blk.attn.qkv.weight
            out[pre + "norm2.weight"] = blk.norm2.weight
            out[pre + "norm2.bias"] = blk.norm2.bias
            out[pre + "mlp.fc1.weight"] = blk.fc1.weight
            out[pre + "mlp.fc1.bias"] = blk.fc1.bias
            out[pre + "mlp.fc2.weight"] = blk.fc2.weight
            out[pre + "mlp.fc2.bias"] = blk.fc2.bias
        out["norm.weight"] = self.norm.weight
        out["norm.bias"] = self.norm.bias
        return {k: v.detach().contiguous().numpy().astype(np.float32) for k, v in out.items()}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make(flavour, seed, h, w, c, batch, **cfg):
    torch.manual_seed(seed)
    m = ViT(h, w, c, standard=flavour == "standard", **cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn_like(p))
            else:
                fan_in = p[0].numel() if p.dim() > 1 and name not in ("cls", "pos") else 1
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in) * (1.0 if fan_in > 1 else 0.5))
    m.eval()
    x = torch.randn(batch, c, h, w)
    with torch.no_grad():
        y = m(x)
    here = os.path.dirname(os.path.abspath(__file__))
    write_safetensors(os.path.join(here, f"vit_{flavour}.safetensors"), m.spreadtrain_state())
    write_safetensors(os.path.join(here, f"vit_{flavour}_io.safetensors"), {"x": x.numpy(), "want": y.numpy()})
    print(flavour, "params", sum(p.numel() for p in m.parameters()), "output", tuple(y.shape),
          "std", float(y.std()))


if __name__ == "__main__":
    make("reference", 7, 16, 16, 3, 4, patch=4, d=32, depth=2, heads=4, mlp=64)
    make("standard", 8, 12, 8, 1, 4, patch=4, d=32, depth=2, heads=4, mlp=64)
