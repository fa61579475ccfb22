"""Mirror of arpix's image-gpt (src/models/image-gpt/; Chen et al. 2020, "Generative
Pretraining from Pixels"): a pre-norm GPT-2 on the raster sequence of pixel tokens — grey values
(the identity palette, arpix's categorical head) or nearest palette colours (the palette head,
whose log-likelihood is of the token sequence). A learned start-of-sequence vector at position 0,
the embeddings of tokens 0..L-2 after it, learned positions, causal attention, an untied head."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ConditionProjection


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: openai/image-gpt's norm, no centring, no bias."""

    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(d, kind):
    return RMSNorm(d) if kind == "rms" else nn.LayerNorm(d, eps=1e-5)


class Attention(nn.Module):
    """One [3d, d] projection to q | k | v (head-major inside each), causal softmax attention, an output projection."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        n, l, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.reshape(n, l, h, d // h).transpose(1, 2) for t in (q, k, v))  # [N, h, L, d/h]
        logits = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        mask = torch.ones(l, l, dtype=torch.bool, device=x.device).tril()
        a = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1) @ v
        return self.out(a.transpose(1, 2).reshape(n, l, d))


class Block(nn.Module):
    """Pre-norm: x + attn(norm1(x)), then + ff2(gelu(ff1(norm2(x))))."""

    def __init__(self, d, heads, ff, norm, gelu):
        super().__init__()
        self.attn = Attention(d, heads)
        self.norm1 = make_norm(d, norm)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)
        self.norm2 = make_norm(d, norm)
        self.approximate = "tanh" if gelu == "tanh" else "none"

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.ff2(F.gelu(self.ff1(self.norm2(h)), approximate=self.approximate))


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        lik = config["likelihood"]
        h, w, c, d = config["height"], config["width"], config["channels"], config["embedDim"]
        self.length = h * w
        if lik["kind"] == "categorical":
            if c != 1:
                raise ValueError("image-gpt: the categorical head is the identity grey palette, for one channel")
            vocab = lik["levels"]
            self.palette = None
            self.loss_dims = h * w * c
        elif lik["kind"] == "palette":
            vocab = lik["k"]
            if len(lik["colours"]) != vocab * c:
                raise ValueError("image-gpt: the palette is not fitted (likelihood.colours must hold k*C values)")
            self.register_buffer("palette", torch.tensor(lik["colours"], dtype=torch.float64).reshape(vocab, c), persistent=False)
            self.loss_dims = h * w  # per token
        else:
            raise ValueError(f"image-gpt: likelihood must be categorical or palette, got {lik['kind']}")
        self.sos = nn.Parameter(torch.zeros(d))
        self.tokenEmbed = nn.Embedding(vocab, d)
        self.posEmbed = nn.Embedding(self.length, d)
        self.cond = ConditionProjection(config.get("numClasses", 0), config.get("conditionDim", 0), d)
        ff = config["mlpRatio"] * d
        self.blocks = nn.ModuleList([Block(d, config["heads"], ff, config["norm"], config["gelu"]) for _ in range(config["layers"])])
        self.normOut = make_norm(d, config["norm"])
        self.head = nn.Linear(d, vocab, bias=False)

    def tokens(self, images):
        """[N, L] tokens: grey values, or the nearest palette colour (ties to the lowest index)."""
        n = images.shape[0]
        if self.palette is None:
            return images.reshape(n, self.length).long()
        dist = ((images.reshape(n, self.length, 1, -1).double() - self.palette) ** 2).sum(-1)
        return dist.argmin(-1)

    def hidden(self, tokens, labels=None, h=None):
        n = tokens.shape[0]
        x = torch.cat([self.sos.expand(n, 1, -1), self.tokenEmbed(tokens[:, :-1])], dim=1) + self.posEmbed.weight
        c = self.cond(labels, h)
        if c is not None:
            x = x + c[:, None, :]
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, images, labels=None):
        if self.config.get("numClasses", 0) > 0 and labels is None:
            raise ValueError(f"labels are required: this model is conditioned on {self.config['numClasses']} classes")
        tokens = self.tokens(images)
        logits = self.head(self.normOut(self.hidden(tokens, labels)))
        return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1)
