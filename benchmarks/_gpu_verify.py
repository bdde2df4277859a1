"""gpu_check: the CUDA paths around the kernels (attention, bf16, compile, DDP, tiling, ONNX).

Each check returns ``{"status": "pass" | "fail" | "not available", "details": {...}}``.
"""

from __future__ import annotations

import datetime
import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from _gpu_setup import Setup, exact_fp32, max_error

ATTENTION_TOL = 1e-5
ATTENTION_MODELS = ["hat_light", "contrast_light", "contrast_tiny", "baseline_no_pe_no_cab"]
ATTENTION_MODES = [("bf16", True), ("fp32", True), ("bf16", False), ("fp32", False)]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def _attention_modules(setup: Setup):
    """Shifted window attention, OCAB with each bias; head dim 9 (padded on CUDA) and 8."""
    from contrast_sr.models.blocks import OCAB, WindowAttention

    ws = 4 if setup.dry_run else 8
    torch.manual_seed(0)
    return {
        "WindowAttention shift, d 9": WindowAttention(18, 2, ws, shift=ws // 2),
        "WindowAttention, d 8": WindowAttention(16, 2, ws),
        "OCAB dynamic bias, d 9": OCAB(18, 2, ws, bias="dynamic"),
        "OCAB no bias, d 8": OCAB(16, 2, ws, bias="none"),
    }


def _outputs_and_grads(module, x):
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    leaves = [x, *(p for p in module.parameters() if p.requires_grad)]
    return [out, *torch.autograd.grad(out.square().sum(), leaves)]


def check_attention(setup: Setup) -> dict:
    """SDPA == explicit attention on the device (values, gradients, padded head dims), and the
    kernel every attention module of the light models gets, run with only that kernel on."""
    from contrast_sr.models.blocks.attention_backend import attention_backends

    details: dict = {"equality": {}, "backends": {}}
    ok = True
    side = 8 if setup.dry_run else 32
    with exact_fp32():
        for name, module in _attention_modules(setup).items():
            module = module.to(setup.device)
            x = torch.randn(2, side, side, module.dim, device=setup.device)
            module.impl = "sdpa"
            fast = _outputs_and_grads(module, x)
            module.impl = "explicit"
            ref = _outputs_and_grads(module, x)
            err = max_error(fast, ref)
            details["equality"][name] = err
            ok = ok and err <= ATTENTION_TOL
    for model_name in ATTENTION_MODELS:
        model = setup.model(model_name)
        per_mode = {}
        for precision, training in ATTENTION_MODES:
            mode = f"{precision} {'train' if training else 'eval'}"
            entries = attention_backends(model, setup.device, DTYPES[precision], training, True)
            per_mode[mode] = sorted(
                {f"{e['kind']} ({e['bias']} bias): {e['backend']}" for e in entries}
            )
            ok = ok and all(e.get("verified", e["backend"] == "explicit") for e in entries)
            if setup.device.type == "cuda":  # the point of the 4-D layout: no math fallback
                ok = ok and all(e["backend"] != "math" for e in entries)
        details["backends"][model_name] = per_mode
    return {"status": "pass" if ok else "fail", "details": details}


def _batch(setup: Setup, batch: int, patch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lr = torch.rand(batch, 3, patch, patch, generator=gen)
    hr = torch.rand(batch, 3, patch * setup.scale, patch * setup.scale, generator=gen)
    return lr.to(setup.device), hr.to(setup.device)


def _finite_grads(model) -> bool:
    return all(
        torch.isfinite(p.grad).all().item() for p in model.parameters() if p.grad is not None
    )


def check_bf16_step(setup: Setup) -> dict:
    """One Adam step of the v1 hybrid (SS2D + window attention + OCAB) under bf16 autocast."""
    model = setup.model("contrast_v1_light")
    lr, hr = _batch(setup, 2, setup.patch // 2)
    with torch.no_grad():
        loss32 = F.l1_loss(model(lr), hr).item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.autocast(setup.device.type, dtype=torch.bfloat16):
        out = model(lr)
        loss = F.l1_loss(out.float(), hr)
    loss.backward()
    finite = bool(torch.isfinite(loss).item()) and _finite_grads(model)
    opt.step()
    changed = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    rel = abs(loss.item() - loss32) / max(abs(loss32), 1e-12)
    ok = finite and changed > 0 and rel < 5e-2
    details = {
        "output_dtype": str(out.dtype),
        "loss_bf16": loss.item(),
        "loss_fp32": loss32,
        "loss_rel_diff": rel,
        "finite": finite,
        "params_changed": f"{changed}/{len(before)}",
    }
    return {"status": "pass" if ok else "fail", "details": details}


def check_compile(setup: Setup) -> dict:
    """torch.compile of the v1 hybrid (one group): forward and gradients equal eager's."""
    import time

    model = setup.model("contrast_v1_light", **({} if setup.dry_run else {"depths": [6]}))
    lr, _ = _batch(setup, 2, setup.patch // 2)

    def run(m):
        x = lr.detach().clone().requires_grad_(True)
        out = m(x)
        return [out, *torch.autograd.grad(out.square().mean(), [x, *m.parameters()])]

    with exact_fp32():
        eager = run(model)
        compiled = torch.compile(model, backend=setup.compile_backend)
        start = time.perf_counter()
        first = run(compiled)
        compile_s = time.perf_counter() - start
        err = max_error(first, eager)
    ok = err <= 1e-3
    details = {"backend": setup.compile_backend, "first_call_s": compile_s, "max_rel_err": err}
    return {"status": "pass" if ok else "fail", "details": details}


def check_ddp(setup: Setup) -> dict:
    """DistributedDataParallel over NCCL (gloo in a dry run) with one process: a step and an
    all_reduce."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if setup.ddp_backend == "nccl" and not dist.is_nccl_available():
        return {"status": "not available", "note": "this PyTorch build has no NCCL"}
    with tempfile.TemporaryDirectory() as tmp:
        store = f"file://{Path(tmp) / 'store'}"
        dist.init_process_group(
            setup.ddp_backend,
            init_method=store,
            rank=0,
            world_size=1,
            timeout=datetime.timedelta(seconds=120),
        )
        try:
            if setup.device.type == "cuda":
                torch.cuda.set_device(setup.device.index or 0)
            model = setup.model("contrast_tiny")
            ids = [setup.device.index or 0] if setup.device.type == "cuda" else None
            ddp = DistributedDataParallel(model, device_ids=ids)
            lr, hr = _batch(setup, 2, setup.patch // 2)
            F.l1_loss(ddp(lr), hr).backward()
            grads = _finite_grads(model)
            value = torch.full((1,), 3.0, device=setup.device)
            dist.all_reduce(value)
            reduced = value.item()
        finally:
            dist.destroy_process_group()
    ok = grads and reduced == 3.0
    details = {"backend": setup.ddp_backend, "all_reduce": reduced, "finite_grads": grads}
    return {"status": "pass" if ok else "fail", "details": details}


def _smooth_image(h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    r = 0.5 + 0.4 * torch.sin(12 * xx + 3 * yy)
    g = 0.5 + 0.4 * torch.cos(9 * yy - 4 * xx)
    return torch.stack([r, g, 0.3 + 0.6 * xx * yy])


def check_upscale_tiled(setup: Setup) -> dict:
    """The bundled default model upscales with tiles as without (no seams): PSNR >= 40 dB."""
    from contrast_sr.infer import Upscaler
    from contrast_sr.models import resolve_model

    model = resolve_model("contrast_tiny", 4)
    h, w, tile = (40, 56, 24) if setup.dry_run else (200, 300, 96)
    image = _smooth_image(h, w)
    full = Upscaler(model, device=setup.device, tile=0)(image)
    overlap = 8 if setup.dry_run else 16  # below half the tile, as the Upscaler requires
    tiled = Upscaler(model, device=setup.device, tile=tile, tile_overlap=overlap)(image)
    mse = (full - tiled).square().mean().item()
    psnr = 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")
    ok = tiled.shape == full.shape == (3, 4 * h, 4 * w) and bool(torch.isfinite(tiled).all())
    ok = ok and psnr >= 40.0
    details = {"image": [h, w], "tile": tile, "psnr_tiled_vs_full_db": psnr}
    return {"status": "pass" if ok else "fail", "details": details}


def check_onnx(setup: Setup, output: Path) -> dict:
    """Train contrast_tiny a few steps on the device, save it, load it, export it to ONNX
    (checked against PyTorch by onnxruntime inside export_onnx)."""
    import importlib.util

    from contrast_sr.export.onnx import export_onnx
    from contrast_sr.models import load_model, save_model

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return {"status": "not available", "note": "onnx / onnxruntime not installed"}
    model = setup.model("contrast_tiny")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(3):
        lr, hr = _batch(setup, 2, setup.patch // 2, seed=step)
        opt.zero_grad()
        F.l1_loss(model(lr), hr).backward()
        opt.step()
    path = save_model(model, output / "cuda_trained_contrast_tiny.safetensors")
    loaded = load_model(path)
    same = all(
        torch.equal(a.cpu(), b)
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    report = export_onnx(
        loaded, output / "cuda_trained_contrast_tiny.onnx", size=16 if setup.dry_run else 32
    )
    details = {"trained_on": str(setup.device), "reloaded_equal": same, **report.to_dict()}
    return {"status": "pass" if same else "fail", "details": details}
