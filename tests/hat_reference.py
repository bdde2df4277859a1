"""An independent statement of official HAT (Chen et al., "Activating More Pixels in Image
Super-Resolution Transformer") for the converter tests: its state-dict layout and a functional
forward over that state dict, written from the paper's architecture and HAT's tensor names,
without any of this package's modules.

HAT: x -> (x - mean) * img_range -> conv_first -> tokens, LayerNorm -> per group (RHAG):
[HAB]*depth -> OCAB -> conv3x3 + group input -> LayerNorm -> conv_after_body + conv_first output
-> conv (C -> 64) + LeakyReLU -> [conv 64 -> 256, PixelShuffle(2)]*log2(s) (or one 9x conv and
PixelShuffle(3)) -> conv (64 -> 3) -> / img_range + mean.
HAB: t + W-MSA(LN t) (every second block shifted by ws/2, -100 mask) + 0.01 CAB(LN t), then
t + MLP(LN t). OCAB: queries in ws x ws windows, keys/values in the ows x ows window around
each (zero padded), position bias from a (ws + ows - 1)^2 table.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HAT_MEAN = (0.4488, 0.4371, 0.4040)


def rpi_sa(ws: int) -> torch.Tensor:
    """(ws^2, ws^2) index into the (2 ws - 1)^2 table of the window self-attention."""
    yy, xx = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()])  # (2, n)
    rel = (pos[:, :, None] - pos[:, None, :]) + (ws - 1)
    return rel[0] * (2 * ws - 1) + rel[1]


def rpi_oca(ws: int, ows: int) -> torch.Tensor:
    """(ws^2, ows^2) index into the (ws + ows - 1)^2 table of the overlapping cross-attention."""
    qy, qx = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    ky, kx = torch.meshgrid(torch.arange(ows), torch.arange(ows), indexing="ij")
    q = torch.stack([qy.flatten(), qx.flatten()])
    k = torch.stack([ky.flatten(), kx.flatten()])
    rel = (k[:, None, :] - q[:, :, None]) + (ws - ows + 1)
    return rel[0] * (ws + ows - 1) + rel[1]


def hat_state_dict(
    dim: int,
    depths: list[int],
    heads: int,
    ws: int,
    compress: int,
    squeeze: int,
    scale: int,
    mlp_ratio: float = 2.0,
    overlap: float = 0.5,
    feat: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, torch.Tensor]:
    """Random tensors with official HAT's names and shapes (and its two index buffers)."""
    g = torch.Generator().manual_seed(seed)
    ows = ws + int(ws * overlap)
    hidden = int(dim * mlp_ratio)
    sd: dict[str, torch.Tensor] = {}

    def put(name: str, *shape: int, std: float = 0.02, mean: float = 0.0) -> None:
        if device == "meta":
            sd[name] = torch.empty(shape, device="meta")
        else:
            sd[name] = torch.randn(shape, generator=g) * std + mean

    def linear(name: str, n_out: int, n_in: int, std: float = 0.05) -> None:
        put(name + ".weight", n_out, n_in, std=std)
        put(name + ".bias", n_out, std=0.02)

    def conv(name: str, n_out: int, n_in: int, k: int = 3, std: float = 0.05) -> None:
        put(name + ".weight", n_out, n_in, k, k, std=std)
        put(name + ".bias", n_out, std=0.02)

    def norm(name: str) -> None:
        put(name + ".weight", dim, std=0.1, mean=1.0)
        put(name + ".bias", dim, std=0.05)

    conv("conv_first", dim, 3, std=0.2)
    norm("patch_embed.norm")
    sd["relative_position_index_SA"] = rpi_sa(ws)
    sd["relative_position_index_OCA"] = rpi_oca(ws, ows)
    for i, depth in enumerate(depths):
        group = f"layers.{i}.residual_group."
        for j in range(depth):
            p = f"{group}blocks.{j}."
            norm(p + "norm1")
            put(p + "attn.relative_position_bias_table", (2 * ws - 1) ** 2, heads, std=1.0)
            linear(p + "attn.qkv", 3 * dim, dim, std=0.3)
            linear(p + "attn.proj", dim, dim)
            conv(p + "conv_block.cab.0", dim // compress, dim, std=0.2)
            conv(p + "conv_block.cab.2", dim, dim // compress, std=0.2)
            conv(p + "conv_block.cab.3.attention.1", dim // squeeze, dim, k=1, std=0.3)
            conv(p + "conv_block.cab.3.attention.3", dim, dim // squeeze, k=1, std=0.3)
            norm(p + "norm2")
            linear(p + "mlp.fc1", hidden, dim)
            linear(p + "mlp.fc2", dim, hidden)
        o = group + "overlap_attn."
        norm(o + "norm1")
        linear(o + "qkv", 3 * dim, dim, std=0.3)
        put(o + "relative_position_bias_table", (ws + ows - 1) ** 2, heads, std=1.0)
        linear(o + "proj", dim, dim)
        norm(o + "norm2")
        linear(o + "mlp.fc1", hidden, dim)
        linear(o + "mlp.fc2", dim, hidden)
        conv(f"layers.{i}.conv", dim, dim)
    norm("norm")
    conv("conv_after_body", dim, dim)
    conv("conv_before_upsample.0", feat, dim)
    if scale == 3:
        conv("upsample.0", 9 * feat, feat)
    else:
        for k in range(int(math.log2(scale))):
            conv(f"upsample.{2 * k}", 4 * feat, feat)
    conv("conv_last", 3, feat)
    return sd


# ---------------------------------------------------------------- functional forward


def _windows(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(b, h, w, c) -> (b * nw, ws * ws, c), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def _unwindows(x: torch.Tensor, ws: int, b: int, h: int, w: int) -> torch.Tensor:
    c = x.shape[-1]
    x = x.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def _shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """(nw, n, n): 0 within one region of the rolled image, -100 across regions."""
    region = torch.zeros(1, h, w, 1)
    bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in bands:
        for wsl in bands:
            region[:, hs, wsl, :] = label
            label += 1
    r = _windows(region, ws)[..., 0]  # (nw, n)
    diff = r[:, None, :] - r[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def _attend(q, k, v, bias, heads, mask=None):
    """q (B, n, c), k/v (B, m, c), bias (heads, n, m) -> (B, n, c)."""
    B, n, c = q.shape
    d = c // heads
    q = q.view(B, n, heads, d).transpose(1, 2) * d**-0.5
    k = k.view(B, -1, heads, d).transpose(1, 2)
    v = v.view(B, -1, heads, d).transpose(1, 2)
    a = q @ k.transpose(-2, -1) + bias[None]
    if mask is not None:
        nw = mask.shape[0]
        a = (a.view(B // nw, nw, heads, n, -1) + mask[None, :, None]).view(B, heads, n, -1)
    return (a.softmax(-1) @ v).transpose(1, 2).reshape(B, n, c)


def hat_forward(
    sd: dict[str, torch.Tensor],
    x: torch.Tensor,
    depths: list[int],
    heads: int,
    ws: int,
    scale: int,
    overlap: float = 0.5,
    conv_scale: float = 0.01,
    img_range: float = 1.0,
) -> torch.Tensor:
    """HAT's output for x (b, 3, h, w) with h, w multiples of ws."""

    def lin(t, name):
        return F.linear(t, sd[name + ".weight"], sd[name + ".bias"])

    def conv(t, name):
        weight = sd[name + ".weight"]
        return F.conv2d(t, weight, sd[name + ".bias"], padding=weight.shape[-1] // 2)

    def ln(t, name):
        return F.layer_norm(t, t.shape[-1:], sd[name + ".weight"], sd[name + ".bias"])

    mean = torch.tensor(HAT_MEAN).view(1, 3, 1, 1)
    x = (x - mean) * img_range
    first = conv(x, "conv_first")
    b, c, h, w = first.shape
    ows = ws + int(ws * overlap)
    index_sa, index_oca = rpi_sa(ws).flatten(), rpi_oca(ws, ows).flatten()
    mask = _shift_mask(h, w, ws, ws // 2)
    t = ln(first.flatten(2).transpose(1, 2), "patch_embed.norm")  # (b, hw, c)
    for i, depth in enumerate(depths):
        group_in = t
        for j in range(depth):
            p = f"layers.{i}.residual_group.blocks.{j}."
            shift = 0 if j % 2 == 0 else ws // 2
            xn = ln(t, p + "norm1").view(b, h, w, c)
            img = xn.permute(0, 3, 1, 2)
            cab = conv(F.gelu(conv(img, p + "conv_block.cab.0")), p + "conv_block.cab.2")
            gate = F.adaptive_avg_pool2d(cab, 1)
            gate = conv(
                F.relu(conv(gate, p + "conv_block.cab.3.attention.1")),
                p + "conv_block.cab.3.attention.3",
            )
            cab = (cab * torch.sigmoid(gate)).permute(0, 2, 3, 1).reshape(b, h * w, c)
            rolled = torch.roll(xn, (-shift, -shift), (1, 2)) if shift else xn
            q, k, v = lin(_windows(rolled, ws), p + "attn.qkv").chunk(3, dim=-1)
            table = sd[p + "attn.relative_position_bias_table"]
            bias = table[index_sa].view(ws * ws, ws * ws, heads).permute(2, 0, 1)
            y = lin(_attend(q, k, v, bias, heads, mask if shift else None), p + "attn.proj")
            y = _unwindows(y, ws, b, h, w)
            y = torch.roll(y, (shift, shift), (1, 2)) if shift else y
            t = t + y.reshape(b, h * w, c) + conv_scale * cab
            t = t + lin(F.gelu(lin(ln(t, p + "norm2"), p + "mlp.fc1")), p + "mlp.fc2")
        o = f"layers.{i}.residual_group.overlap_attn."
        qkv = lin(ln(t, o + "norm1"), o + "qkv").view(b, h, w, 3, c)
        q = _windows(qkv[..., 0, :], ws)
        kv = qkv[..., 1:, :].reshape(b, h, w, 2 * c).permute(0, 3, 1, 2)  # (b, [k | v] c, h, w)
        cols = F.unfold(kv, ows, stride=ws, padding=(ows - ws) // 2)  # (b, 2c ows ows, nw)
        cols = cols.view(b, 2, c, ows * ows, -1).permute(1, 0, 4, 3, 2).reshape(2, -1, ows * ows, c)
        table = sd[o + "relative_position_bias_table"]
        bias = table[index_oca].view(ws * ws, ows * ows, heads).permute(2, 0, 1)
        y = _unwindows(_attend(q, cols[0], cols[1], bias, heads), ws, b, h, w)
        t = lin(y.reshape(b, h * w, c), o + "proj") + t
        t = t + lin(F.gelu(lin(ln(t, o + "norm2"), o + "mlp.fc1")), o + "mlp.fc2")
        img = t.transpose(1, 2).reshape(b, c, h, w)
        t = conv(img, f"layers.{i}.conv").flatten(2).transpose(1, 2) + group_in
    body = ln(t, "norm").transpose(1, 2).reshape(b, c, h, w)
    y = F.leaky_relu(conv(conv(body, "conv_after_body") + first, "conv_before_upsample.0"))
    if scale == 3:
        y = F.pixel_shuffle(conv(y, "upsample.0"), 3)
    else:
        for k in range(int(math.log2(scale))):
            y = F.pixel_shuffle(conv(y, f"upsample.{2 * k}"), 2)
    return conv(y, "conv_last") / img_range + mean
