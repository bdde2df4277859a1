"""The Contrast family as one configurable network (HAT-style residual groups).

Pipeline: (x - mean) * img_range -> conv_first -> tokens + LayerNorm (``patch_embed.norm``)
-> residual groups -> [LayerNorm ``norm``] -> conv_after_body + global skip -> upsampler
-> / img_range + mean. A residual group runs its blocks (kinds cycled from
``block_pattern``), then an optional OCAB, then a 3x3 conv, plus a long skip. Inputs of any
size are reflect-padded to a multiple of the window size and the output is cropped (both
traceable with dynamic height and width, for ONNX export).

The network is built from a :class:`~contrast_sr.models.config.ContrastConfig` in one place
(:func:`build_group` and ``ContrastSR.__init__``). Every named variant in
:mod:`contrast_sr.models.registry` is a configuration of this class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from contrast_sr.errors import ArgumentError
from contrast_sr.models.blocks.block import Block
from contrast_sr.models.blocks.edge_conv import make_conv3x3
from contrast_sr.models.blocks.norm import LayerNorm
from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.models.blocks.upsample import build_upsampler
from contrast_sr.models.blocks.windows import pad_reflect
from contrast_sr.models.config import BLOCK_KINDS, ContrastConfig
from contrast_sr.models.state_dict import rename_original_keys
from contrast_sr.ops.tracing import is_capturing

RGB_MEAN = (0.4488, 0.4371, 0.4040)


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> channels-last (B, H, W, C) + LayerNorm (``norm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1))


class BlockSequence(nn.Module):
    """``blocks`` then an optional ``overlap_attn`` (OCAB). (B, H, W, C) -> (B, H, W, C)."""

    def __init__(self, blocks: Sequence[nn.Module], overlap_attn: nn.Module | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.overlap_attn = overlap_attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        if self.overlap_attn is not None:
            x = self.overlap_attn(x)
        return x


class ResidualGroup(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): x + res_scale * conv(residual_group(x)) ("RHAG"); ``conv``
    is a 3x3 conv (``resi_connection`` "1conv") or the identity; ``res_scale`` < 1 is DRCT's
    residual scaling (0.2)."""

    def __init__(
        self, residual_group: BlockSequence, conv: nn.Module, res_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.residual_group = residual_group
        self.conv = conv
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.residual_group(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + y if self.res_scale == 1.0 else x + self.res_scale * y


# ---------------------------------------------------------------- building from the config


def build_block(cfg: ContrastConfig, kind: str, index: int) -> Block:
    """Block of ``kind``; ``index`` counts the blocks of that kind before it in the group."""
    return Block(
        cfg.dim,
        BLOCK_KINDS[kind].build(cfg, index),
        kind=kind,
        ffn=cfg.ffn,
        mlp_ratio=cfg.mlp_ratio,
        dw_padding=cfg.dw_padding,
        cab=cfg.cab,
        compress_ratio=cfg.compress_ratio,
        squeeze_factor=cfg.squeeze_factor,
        conv_scale=cfg.conv_scale,
    )


def build_ocab(cfg: ContrastConfig) -> OCAB:
    """The overlapping cross-attention block closing every group (when ``cfg.ocab``)."""
    return OCAB(
        cfg.dim,
        cfg.num_heads,
        cfg.window_size,
        cfg.overlap_ratio,
        bias=cfg.ocab_bias,
        ffn=cfg.ffn,
        mlp_ratio=cfg.mlp_ratio,
        dw_padding=cfg.dw_padding,
        impl=cfg.attention,
        clip=cfg.softmax_clip,
    )


def build_group(cfg: ContrastConfig, depth: int) -> ResidualGroup:
    """``depth`` blocks (kinds cycled from ``block_pattern``), [OCAB], then the group conv."""
    kinds = [cfg.block_pattern[i % len(cfg.block_pattern)] for i in range(depth)]
    blocks = [build_block(cfg, kind, kinds[:i].count(kind)) for i, kind in enumerate(kinds)]
    body = BlockSequence(blocks, build_ocab(cfg) if cfg.ocab else None)
    if cfg.resi_connection == "1conv":
        conv: nn.Module = make_conv3x3(cfg.dim, cfg.dim, cfg.edge_conv)
    else:
        conv = nn.Identity()
    return ResidualGroup(body, conv, cfg.group_res_scale)


# ---------------------------------------------------------------- the network


class ContrastSR(nn.Module):
    """Configurable Contrast / HAT super-resolution network.

    forward(x (B, in_chans, H, W) in [0, 1]) -> (B, in_chans, scale·H, scale·W), any H, W >= 1.
    Attributes: ``config`` (:class:`ContrastConfig`), ``scale``, ``variant`` (name or None).
    """

    def __init__(
        self, config: ContrastConfig | None = None, scale: int = 4, variant: str | None = None
    ) -> None:
        super().__init__()
        cfg = ContrastConfig() if config is None else config
        if not isinstance(cfg, ContrastConfig):
            raise ArgumentError(
                "config", f"expected a ContrastConfig (ContrastConfig.from_dict), not {cfg!r}"
            )
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ArgumentError("scale", f"expected an integer >= 1, got {scale!r}")
        self.config, self.scale, self.variant = cfg, scale, variant
        dim, cin, edge = cfg.dim, cfg.in_chans, cfg.edge_conv
        self.img_range = cfg.img_range
        mean = RGB_MEAN if cin == 3 else (0.0,)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.mean_norm = cfg.mean_norm
        self.pad_multiple = cfg.window_size if cfg.uses_windows else 1

        self.conv_first = make_conv3x3(cin, dim, edge)
        self.patch_embed = PatchEmbed(dim)
        self.layers = nn.ModuleList(build_group(cfg, depth) for depth in cfg.depths)
        self.norm = LayerNorm(dim) if cfg.final_norm else None
        self.conv_after_body = make_conv3x3(dim, dim, edge)
        try:
            head = build_upsampler(
                cfg.upsampler, dim, scale, cin, cfg.upsample_features, cfg.leaky_relu
            )
        except ValueError as exc:
            raise ArgumentError("scale", str(exc)) from None
        self.conv_before_upsample = head.conv_before_upsample
        self.upsample = head.upsample
        self.conv_last = head.conv_last
        self.apply(_init_weights)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign=False):
        """As ``nn.Module.load_state_dict``; also takes the keys of the original research
        checkpoints and of older project checkpoints (see :func:`rename_original_keys`)."""
        state = rename_original_keys(state_dict)
        return super().load_state_dict(state, strict=strict, assign=assign)

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
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        if self.mean_norm:
            x = self._add_mean(x)
        return x[..., : h * self.scale, : w * self.scale]

    def _add_mean(self, x: torch.Tensor) -> torch.Tensor:
        """x / img_range + mean on the HR output; in place when no gradient flows (the tail's
        HR tensors are the largest of a forward), and no division by an img_range of 1."""
        mean = self.mean.to(x.dtype)
        if x.requires_grad or is_capturing():
            return (x if self.img_range == 1.0 else x / self.img_range) + mean
        if self.img_range != 1.0:
            x.div_(self.img_range)
        return x.add_(mean)


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


__all__ = ["ContrastSR", "build_group", "count_parameters", "pad_reflect"]
