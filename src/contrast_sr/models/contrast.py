"""The Contrast family as one configurable network (HAT-style residual groups).

Pipeline: (x - mean) * img_range -> conv_first -> tokens + LayerNorm (``patch_embed.norm``)
-> residual groups -> [LayerNorm ``norm``] -> conv_after_body + global skip -> upsampler
-> / img_range + mean. A residual group runs its blocks (kinds cycled from
``block_pattern``), then an optional OCAB, then a 3x3 conv, plus a long skip. Inputs of any
size are reflect-padded to a multiple of the window size and the output is cropped.

Every named variant in :mod:`contrast_sr.models.registry` is a configuration of this class.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.models.blocks.edge_conv import make_conv3x3
from contrast_sr.models.blocks.layers import BLOCK_KINDS, Block
from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.models.blocks.upsample import UPSAMPLERS, build_upsampler

RGB_MEAN = (0.4488, 0.4371, 0.4040)

DEFAULT_CONFIG: dict = {
    "in_chans": 3,
    "dim": 48,  # C, embedding width
    "depths": [6, 6, 6],  # blocks per residual group
    "num_heads": 6,  # heads of OCAB and window attention
    "window_size": 16,
    "overlap_ratio": 0.5,
    "mlp_ratio": 2.0,
    "block_pattern": ["ss2d"],  # cycled over each group's blocks; e.g. ["ss2d"]*5 + ["attn"]
    "cab": False,  # CAB branch in every block (baseline, HAT)
    "compress_ratio": 3,
    "squeeze_factor": 30,
    "conv_scale": 0.01,
    "ffn": "mlp",  # mlp | sgfn | gcffn | gcffn_grouped | convffn | convffn_plain
    "dw_padding": "zeros",  # padding of the FFN depthwise convs: zeros | reflect
    "ocab": True,  # one OCAB at the end of every group
    "ocab_bias": "none",  # table | none | dynamic
    "final_norm": True,  # LayerNorm before conv_after_body
    "upsampler": "pixelshuffledirect",  # pixelshuffledirect | pixelshuffle | pixelshuffle_v2
    "upsample_features": 64,  # F of the pixelshuffle head
    "leaky_relu": True,  # LeakyReLU after conv_before_upsample (pixelshuffle only)
    "img_range": 1.0,
    "mean_norm": True,  # subtract/add the RGB mean (HAT-light: False)
    "resi_connection": "1conv",  # 1conv | identity
    "ssm_d_state": 1,
    "ssm_ratio": 1.0,
    "ssm_dt_rank": "auto",
    "ssm_conv_bias": True,
    "attention": "sdpa",  # sdpa | explicit
    "clipped_softmax": False,
    "clip_zeta": -0.003,
    "clip_gamma": 1.003,
    "edge_conv": False,  # edge-correction on the body's 3x3 convs
}


def resolve_config(config: dict | None = None, **overrides) -> dict:
    """Defaults + ``config`` + ``overrides``, validated; returns a new JSON-able dict."""
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    for source in (config or {}, overrides):
        unknown = sorted(set(source) - set(cfg) - {"scale"})
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown}")
        cfg.update(copy.deepcopy(source))
    cfg.pop("scale", None)
    cfg["depths"] = [int(d) for d in cfg["depths"]]
    cfg["block_pattern"] = list(cfg["block_pattern"])
    bad = [k for k in cfg["block_pattern"] if k not in BLOCK_KINDS]
    if bad or not cfg["block_pattern"]:
        raise ValueError(
            f"block_pattern {cfg['block_pattern']}: kinds must be in {sorted(BLOCK_KINDS)}"
        )
    if cfg["upsampler"] not in UPSAMPLERS:
        raise ValueError(f"unknown upsampler {cfg['upsampler']!r}")
    if cfg["dim"] % cfg["num_heads"]:
        raise ValueError(f"dim {cfg['dim']} is not divisible by num_heads {cfg['num_heads']}")
    if cfg["dw_padding"] not in ("zeros", "reflect"):
        raise ValueError(f"dw_padding must be zeros or reflect, not {cfg['dw_padding']!r}")
    if cfg["attention"] not in ("sdpa", "explicit"):
        raise ValueError(f"attention must be sdpa or explicit, not {cfg['attention']!r}")
    return cfg


def pad_reflect(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom/right to multiples of ``multiple`` by mirroring.

    Works for any H, W >= 1: mirrors repeatedly when the pad exceeds the size, and repeats the
    single row/column of a size-1 axis.
    """
    for dim in (-2, -1):
        need = (-x.shape[dim]) % multiple
        while need > 0:
            size = x.shape[dim]
            step = min(need, size - 1)
            pad = [0, 0, 0, 0]
            pad[1 if dim == -1 else 3] = step if step > 0 else need
            x = F.pad(x, pad, mode="reflect" if step > 0 else "replicate")
            need -= step if step > 0 else need
    return x


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> channels-last (B, H, W, C) + LayerNorm (``norm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1))


class BlockSequence(nn.Module):
    """``blocks`` (kinds cycled from the pattern) then an optional ``overlap_attn`` (OCAB)."""

    def __init__(self, cfg: dict, depth: int) -> None:
        super().__init__()
        dim, pattern = cfg["dim"], cfg["block_pattern"]
        counts: dict[str, int] = {}
        blocks = []
        for i in range(depth):
            kind = pattern[i % len(pattern)]
            blocks.append(Block(kind, cfg, dim, counts.get(kind, 0)))
            counts[kind] = counts.get(kind, 0) + 1
        self.blocks = nn.ModuleList(blocks)
        self.overlap_attn = None
        if cfg["ocab"]:
            clip = (cfg["clip_zeta"], cfg["clip_gamma"]) if cfg["clipped_softmax"] else None
            self.overlap_attn = OCAB(
                dim,
                cfg["num_heads"],
                cfg["window_size"],
                cfg["overlap_ratio"],
                bias=cfg["ocab_bias"],
                ffn=cfg["ffn"],
                mlp_ratio=cfg["mlp_ratio"],
                dw_padding=cfg["dw_padding"],
                impl=cfg["attention"],
                clip=clip,
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        if self.overlap_attn is not None:
            x = self.overlap_attn(x)
        return x


class ResidualGroup(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): x + conv3x3(blocks(x)) ("RHAG")."""

    def __init__(self, cfg: dict, depth: int) -> None:
        super().__init__()
        self.residual_group = BlockSequence(cfg, depth)
        dim = cfg["dim"]
        if cfg["resi_connection"] == "1conv":
            self.conv = make_conv3x3(dim, dim, cfg["edge_conv"])
        elif cfg["resi_connection"] == "identity":
            self.conv = nn.Identity()
        else:
            raise ValueError(f"unknown resi_connection {cfg['resi_connection']!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.residual_group(x)
        return x + self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ContrastSR(nn.Module):
    """Configurable Contrast / HAT super-resolution network.

    forward(x (B, in_chans, H, W) in [0, 1]) -> (B, in_chans, scale·H, scale·W), any H, W >= 1.
    Attributes: ``scale``, ``config`` (JSON-able dict incl. ``scale``), ``variant`` (name or None).
    """

    def __init__(self, scale: int = 4, variant: str | None = None, **config) -> None:
        super().__init__()
        cfg = resolve_config(config)
        self.scale = int(scale)
        self.variant = variant
        self.config = {**cfg, "scale": self.scale}
        dim, cin, edge = cfg["dim"], cfg["in_chans"], cfg["edge_conv"]
        self.img_range = float(cfg["img_range"])
        mean = RGB_MEAN if cin == 3 else (0.0,)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.mean_norm = bool(cfg["mean_norm"])
        needs_windows = cfg["ocab"] or any(k != "ss2d" for k in cfg["block_pattern"])
        self.pad_multiple = cfg["window_size"] if needs_windows else 1

        self.conv_first = make_conv3x3(cin, dim, edge)
        self.patch_embed = PatchEmbed(dim)
        self.layers = nn.ModuleList(ResidualGroup(cfg, d) for d in cfg["depths"])
        self.norm = nn.LayerNorm(dim) if cfg["final_norm"] else None
        self.conv_after_body = make_conv3x3(dim, dim, edge)
        self.upsampler = cfg["upsampler"]
        head = build_upsampler(
            cfg["upsampler"],
            dim,
            self.scale,
            cin,
            cfg["upsample_features"],
            cfg["leaky_relu"],
        )
        for name, module in head.items():
            setattr(self, name, module)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """conv_first output (B, C, H, W) -> body output (B, C, H, W) (before the global skip)."""
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t)
        if self.norm is not None:
            t = self.norm(t)
        return t.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = pad_reflect(x, self.pad_multiple)
        if self.mean_norm:
            x = (x - self.mean.to(x.dtype)) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = self.upsample(x)
        if self.mean_norm:
            x = x / self.img_range + self.mean.to(x.dtype)
        return x[..., : h * self.scale, : w * self.scale]


def _init_weights(m: nn.Module) -> None:
    """Linear: trunc-normal std 0.02, bias 0; LayerNorm: 1 / 0; convs keep PyTorch defaults."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["DEFAULT_CONFIG", "ContrastSR", "count_parameters", "pad_reflect", "resolve_config"]
