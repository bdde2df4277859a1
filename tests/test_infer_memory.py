"""Memory-bounded upscaling: the measured cost per pixel, the budget, the tile planner, the
overlap rule, out-of-memory retries (CUDA and CPU) and interruption between tiles."""

from __future__ import annotations

import math

import pytest
import torch

from contrast_sr.errors import ArgumentError, ContrastError
from contrast_sr.infer import Upscaler
from contrast_sr.infer import memory as memory_module
from contrast_sr.infer.memory import (
    CPU_BUDGET_CAP,
    MemoryCost,
    available_memory,
    is_out_of_memory,
    measure_cost,
    measure_peak,
    memory_budget,
    parse_memory,
)
from contrast_sr.infer.tile_plan import plan_tiles, processed_pixels, smallest_tile
from contrast_sr.infer.tiling import tile_starts

from ._tiny_models import CPU_OOM, OOMAbove, TinySR

CPU = torch.device("cpu")


@pytest.fixture()
def model() -> TinySR:
    return TinySR(scale=2).eval()


def _with_cost(up: Upscaler, per_pixel: float, fixed: float = 0.0) -> Upscaler:
    """Pin the model's measured cost, so that the decisions below are deterministic."""
    up.memory_cost = lambda: MemoryCost(fixed, per_pixel)  # type: ignore[method-assign]
    return up


# -- the budget ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "size"),
    [("2G", 2 * 1024**3), ("512M", 512 * 1024**2), ("1.5GB", 3 * 1024**3 // 2), ("64k", 65536)],
)
def test_parse_memory(text, size):
    assert parse_memory(text) == size
    assert parse_memory(size) == size and parse_memory(None) is None


@pytest.mark.parametrize("bad", ["lots", "-1G", "0", "2X"])
def test_parse_memory_refuses_nonsense(bad):
    with pytest.raises(ArgumentError, match="max_memory") as caught:
        parse_memory(bad)
    assert caught.value.as_flag().message.startswith("--max-memory:")


def test_default_cpu_budget_is_a_capped_share_of_what_is_available():
    budget = memory_budget(CPU)
    assert 0 < budget <= min(CPU_BUDGET_CAP, available_memory(CPU))
    assert memory_budget(CPU, 123_456) == 123_456


def test_available_memory_respects_ulimit_v(monkeypatch):
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (10 * 1024**3, resource.RLIM_INFINITY))
    monkeypatch.setattr(memory_module, "virtual_bytes", lambda: 9 * 1024**3)
    assert available_memory(CPU) <= 1024**3  # 10 G limit, 9 G of address space in use


@pytest.mark.parametrize(
    ("exc", "oom"),
    [
        (RuntimeError(CPU_OOM), True),
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), True),
        (MemoryError(), True),
        (RuntimeError("MPS backend out of memory"), True),
        (RuntimeError("shape mismatch"), False),
        (ValueError("can't allocate memory"), False),
    ],
)
def test_out_of_memory_is_recognised_on_every_device(exc, oom):
    assert is_out_of_memory(exc) is oom


# -- the measured cost ---------------------------------------------------------------------
def test_measured_cost_is_not_below_the_real_peak():
    """The probes (48 and 96 px) predict a 200x200 forward's peak from above."""
    conv = torch.nn.Sequential(
        *(torch.nn.Conv2d(3 if i == 0 else 16, 16, 3, padding=1) for i in range(3))
    )
    forward = lambda x: conv(x)  # noqa: E731
    cost = measure_cost(forward, 3, CPU)
    real = measure_peak(forward, torch.rand(1, 3, 200, 200), CPU)
    if real is None:
        pytest.skip("peak RSS cannot be measured here (Linux /proc only)")
    assert cost.measured and cost.per_pixel >= 1024
    assert real <= cost.peak(200 * 200)


# -- whole image or tiles ------------------------------------------------------------------
def test_auto_runs_an_image_that_fits_whole_and_tiles_one_that_does_not(model):
    """1000 B/px, 100 MB: 200x200 (60 MB with the safety factor) fits, 400x400 does not."""
    up = _with_cost(Upscaler(model, device="cpu", max_memory="100M"), per_pixel=1000)
    x = torch.rand(1, 3, 200, 200)
    torch.testing.assert_close(up(x), Upscaler(model, device="cpu", tile=0)(x))
    assert up.last_tile is None and up.last_tiles == 0
    up(torch.rand(1, 3, 400, 400))
    th, tw = up.last_tile
    assert up.last_tiles > 1 and th * tw <= 100 * 2**20 / 1.5 / 1000


def test_a_fixed_tile_larger_than_the_image_does_not_tile(model):
    up = Upscaler(model, device="cpu", tile=400)
    up(torch.rand(1, 3, 300, 200))
    assert up.last_tile is None and up.last_tiles == 0


def test_budget_too_small_for_the_smallest_tile_is_a_clean_error(model):
    up = _with_cost(Upscaler(model, device="cpu", max_memory="1M"), per_pixel=1000)
    with pytest.raises(ContrastError, match="too small"):
        up(torch.rand(1, 3, 300, 300))


def test_auto_tiles_are_seamless(model):
    up = _with_cost(Upscaler(model, device="cpu", max_memory="20M"), per_pixel=1000)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 40, 50), size=(240, 300), mode="bicubic")
    x = x.clamp(0, 1)
    tiled, full = up(x), Upscaler(model, device="cpu", tile=0)(x)
    assert up.last_tiles > 1
    mse = torch.mean((tiled.double() - full.double()) ** 2).item()
    assert 10 * math.log10(1 / mse) >= 45.0


# -- the planner ---------------------------------------------------------------------------
def test_plan_covers_with_little_extra_work():
    """A 1000x750 image with room for 233k pixels: 4 rectangular tiles, not 6 squares."""
    th, tw = plan_tiles(750, 1000, 233_000, 32)
    assert th * tw <= 233_000 and min(th, tw) > 2 * 32
    assert processed_pixels(750, 1000, (th, tw), 32) <= 1.15 * 750 * 1000
    assert processed_pixels(750, 1000, (th, tw), 32) < processed_pixels(750, 1000, (480, 480), 32)
    assert plan_tiles(750, 1000, 750 * 1000, 32) is None


@pytest.mark.parametrize(("h", "w"), [(3000, 4000), (100, 5000), (37, 41), (1080, 1920)])
@pytest.mark.parametrize("room", [20_000, 90_000, 400_000])
def test_plan_respects_the_budget_and_covers_the_image(h, w, room):
    tile = plan_tiles(h, w, room, 32)
    if h * w <= room:
        assert tile is None
        return
    th, tw = tile
    assert th * tw <= room or (th, tw) == (min(smallest_tile(32), h), min(smallest_tile(32), w))
    for length, side in ((h, th), (w, tw)):
        starts = tile_starts(length, side, 32)
        assert starts[0] == 0 and starts[-1] + side >= length and side <= length


# -- out of memory -------------------------------------------------------------------------
def test_cuda_oom_shrinks_the_tiles_and_retries():
    net = OOMAbove(limit=40)
    up = Upscaler(net, device="cpu", tile=128, tile_overlap=8)
    out = up(torch.rand(1, 3, 100, 90))
    assert out.shape == (1, 3, 200, 180) and max(up.last_tile) <= 40
    assert max(max(c) for c in net.calls[-4:]) <= 40


def test_cpu_oom_gets_the_same_retry_even_from_a_whole_image_attempt():
    """The CPU allocator's plain RuntimeError: an image planned whole is retried in tiles."""
    net = OOMAbove(limit=60, cpu=True)
    up = _with_cost(Upscaler(net, device="cpu", tile_overlap=8), per_pixel=1)
    out = up(torch.rand(1, 3, 150, 120))
    assert out.shape == (1, 3, 300, 240) and net.calls[0] == (150, 120)
    assert up.last_tiles > 1 and max(up.last_tile) <= 60


def test_oom_with_nothing_left_to_shrink_is_a_clean_error():
    with pytest.raises(ContrastError, match="out of memory"):
        Upscaler(OOMAbove(limit=4), device="cpu", tile=64, tile_overlap=8)(torch.rand(1, 3, 70, 70))
    with pytest.raises(ContrastError, match="untiled"):  # tile 0: never tiled, not even now
        Upscaler(OOMAbove(limit=40, cpu=True), device="cpu", tile=0)(torch.rand(1, 3, 70, 70))


def test_other_errors_are_not_retried():
    class Broken(TinySR):
        calls = 0

        def forward(self, x):
            Broken.calls += 1
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        Upscaler(Broken(), device="cpu", tile=32, tile_overlap=8)(torch.rand(1, 3, 70, 70))
    assert Broken.calls == 1


# -- interruption --------------------------------------------------------------------------
def test_an_interrupt_stops_the_tile_loop_at_once(model):
    """Ctrl-C between tiles: no further tile runs and nothing swallows the interrupt."""
    calls = []

    def progress(total):
        def tick():
            calls.append(total)
            if len(calls) == 2:
                raise KeyboardInterrupt

        return tick

    up = Upscaler(model, device="cpu", tile=32, tile_overlap=8, progress=progress)
    with pytest.raises(KeyboardInterrupt):
        up(torch.rand(1, 3, 100, 100))
    assert len(calls) == 2 and calls[0] == 16
