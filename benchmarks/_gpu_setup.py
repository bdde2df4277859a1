"""Shared pieces of benchmarks/gpu_check.py: the run's shapes, timing, error measures.

A real run uses the issue's shapes on CUDA; ``--dry-run`` the same code on CPU tensors with tiny
shapes and tiny models (Triton kernels then run in its interpreter, TRITON_INTERPRET=1).
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

# overrides that make any light variant tiny (dry run): C 12, one group of 2 blocks, window 4
TINY_OVERRIDES = {
    "dim": 12,
    "depths": [2],
    "num_heads": 2,
    "window_size": 4,
    "squeeze_factor": 4,
    "upsample_features": 8,
}
TRAIN_MODELS = ["hat_light", "baseline", "contrast_light"]  # hat_light: the reference
CLAIMS = {"step_speedup": 0.41, "memory_saving": 0.29}  # seed: vs hat_light, RTX 3060
CLAIM_SLACK = 0.05  # "~41%": holds when measured >= claim - 5 points


@dataclass
class Setup:
    """Shapes and repetitions of one run (:meth:`real` or :meth:`dry`)."""

    device: torch.device
    dry_run: bool
    scan_shape: tuple[int, int, int]  # (b, L, dim) of the scan benchmark
    scan_states: tuple[int, ...]  # N values
    check_scan_shape: tuple[int, int, int]  # (b, L, dim) of the equality checks
    image: tuple[int, int]  # (h, w) of the equality checks' feature maps
    batch: int
    patch: int
    scale: int
    warmup: int
    reps: int
    infer_sizes: list[tuple[int, int]]  # LR (h, w); the last one tiled
    tile: int
    overrides: dict = field(default_factory=dict)  # create_model overrides for every model
    ddp_backend: str = "nccl"
    compile_backend: str = "inductor"

    @classmethod
    def real(cls) -> Setup:
        return cls(
            device=torch.device("cuda"),
            dry_run=False,
            scan_shape=(8, 64 * 64, 4 * 48),
            scan_states=(1, 16),
            check_scan_shape=(2, 1024, 64),
            image=(24, 40),
            batch=8,
            patch=64,
            scale=4,
            warmup=3,
            reps=10,
            infer_sizes=[(256, 256), (1080, 1920)],
            tile=512,
        )

    @classmethod
    def dry(cls) -> Setup:
        return cls(
            device=torch.device("cpu"),
            dry_run=True,
            scan_shape=(1, 16, 8),
            scan_states=(1, 4),
            check_scan_shape=(1, 8, 4),
            image=(3, 5),
            batch=1,
            patch=16,
            scale=4,
            warmup=0,
            reps=1,
            infer_sizes=[(16, 16), (20, 36)],
            tile=16,
            overrides=dict(TINY_OVERRIDES),
            ddp_backend="gloo",
            compile_backend="eager",
        )

    def model(self, name: str, **extra):
        """Variant ``name`` at ``self.scale`` (tiny in a dry run) on the device, train mode."""
        from contrast_sr.models import create_model

        torch.manual_seed(0)
        model = create_model(name, self.scale, **{**self.overrides, **extra})
        return model.to(self.device).train()


def triton_runs_here(device: torch.device) -> bool:
    """Triton kernels can run: triton installed and CUDA tensors (or its CPU interpreter)."""
    import os

    if importlib.util.find_spec("triton") is None:
        return False
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device, warmup: int, reps: int) -> dict:
    """{median_ms, min_ms} of ``fn()`` over ``reps`` runs after ``warmup`` (synchronized)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(max(reps, 1)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"median_ms": round(times[len(times) // 2], 4), "min_ms": round(times[0], 4)}


def peak_memory_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def relative_error(value: torch.Tensor, reference: torch.Tensor, floor: float = 0.0) -> float:
    """max |value - reference| / max(max |reference|, floor) (0 for two zero tensors)."""
    value, reference = value.detach().double(), reference.detach().double()
    scale = max(reference.abs().max().item(), floor)
    err = (value - reference).abs().max().item()
    return err / scale if scale > 0 else err


def max_error(values: list[torch.Tensor], references: list[torch.Tensor]) -> float:
    """The largest :func:`relative_error` over pairs (an output and its gradients), each scaled
    by at least 1e-2 of the largest reference: a gradient that is zero in exact arithmetic
    (e.g. of a per-head bias, which softmax cancels) holds only the rounding noise of a sum of
    large terms, not a relative error."""
    top = max(r.detach().abs().max().item() for r in references if r.numel())
    pairs = zip(values, references, strict=True)
    return max(relative_error(v, r, 1e-2 * top) for v, r in pairs if r.numel())


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions inside (equality checks compare fp32 paths)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32 = matmul
            torch.backends.cudnn.allow_tf32 = cudnn


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
