"""Attention as a PyTorch user writes it without fused kernels (Debian's torch 1.13 has none), in
the formulations the bench's mirrors use: q, k, v [N, heads, L, d] -> [N, heads, L, d].

  dense            the L x L scores with an additive mask bias (-1e9 where masked: exactly 0 after
                   the softmax, as arpix's composed attention): every product computed
  causal_blocked   query blocks against the keys up to their block's end, so the blocks above the
                   diagonal are never computed: (nb + 1) / (2 nb) of dense's products for nb blocks
  local1d_blocked  tensor2tensor's local_attention_1d: each query block of `block` positions against
                   its `memory` positions before and its own block, (memory + block) / L of dense's
                   products (2/7 at Fashion-MNIST's L = 784, block = memory = 112)

All three compute the same function for their pattern; the mask biases are built once per shape.
"""

import functools
import math

import torch
import torch.nn.functional as F

NEG = -1e9


@functools.lru_cache(maxsize=None)
def causal_bias(length):
    """[L, L]: 0 where key j <= query i, -1e9 above the diagonal."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    return torch.where(j <= i, 0.0, NEG)


@functools.lru_cache(maxsize=None)
def local1d_bias(length, block, memory):
    """[nb, block, memory + block]: query r of block b reads window column c (the position
    b * block - memory + c) when that is not after the query and not before the sequence."""
    nb = -(-length // block)
    b = torch.arange(nb)[:, None, None]
    r = torch.arange(block)[None, :, None]
    c = torch.arange(memory + block)[None, None, :]
    return torch.where((c <= memory + r) & (b * block - memory + c >= 0), 0.0, NEG)


def dense(q, k, v, bias):
    scores = torch.matmul(q * (1 / math.sqrt(q.shape[-1])), k.transpose(-1, -2)) + bias
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def causal_blocked(q, k, v, block):
    length = q.shape[2]
    q = q * (1 / math.sqrt(q.shape[-1]))
    bias = causal_bias(length)
    out = []
    for start in range(0, length, block):
        end = min(length, start + block)
        scores = torch.matmul(q[:, :, start:end], k[:, :, :end].transpose(-1, -2)) + bias[start:end, :end]
        out.append(torch.matmul(torch.softmax(scores, dim=-1), v[:, :, :end]))
    return torch.cat(out, dim=2)


def local1d_blocked(q, k, v, block, memory):
    n, h, length, d = q.shape
    nb = -(-length // block)
    pad = nb * block - length
    qb = F.pad(q * (1 / math.sqrt(d)), (0, 0, 0, pad)).view(n, h, nb, block, d)
    # Keys and values padded with `memory` zeros in front and to whole blocks; block b's window is
    # positions [b * block - memory, (b + 1) * block): overlapping views, no copies until the matmul.
    keys = F.pad(k, (0, 0, memory, pad)).unfold(2, memory + block, block)  # [N, h, nb, d, M + B]
    values = F.pad(v, (0, 0, memory, pad)).unfold(2, memory + block, block).transpose(-1, -2)  # [N, h, nb, M + B, d]
    scores = torch.matmul(qb, keys) + local1d_bias(length, block, memory)
    out = torch.matmul(torch.softmax(scores, dim=-1), values)  # [N, h, nb, B, d]
    return out.reshape(n, h, nb * block, d)[:, :, :length]
