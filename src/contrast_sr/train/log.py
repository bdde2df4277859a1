"""What a training run writes as it goes: progress bar, ``metrics.jsonl``, TensorBoard."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import yaml

from contrast_sr.train.config import Config
from contrast_sr.utils.fs import atomic_write


class RunLog:
    """Progress bar, ``metrics.jsonl`` and TensorBoard, all on rank 0 (no-ops elsewhere)."""

    def __init__(self, run_dir: Path, start: int, iters: int, active: bool, cfg: Config) -> None:
        self.active, self.iters, self.tb, self.bar = active, iters, None, None
        if not active:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / "config.yml", "w") as f:
            yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
        self.path = run_dir / "metrics.jsonl"
        if self.path.exists():  # resumed: drop records after the checkpoint
            lines = self.path.read_text().splitlines()
            kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("iter", 0) <= start]
            with atomic_write(self.path, "w") as f:
                f.write("".join(ln + "\n" for ln in kept))
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        with contextlib.suppress(ImportError):
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start + 1)
        self.tty = sys.stderr.isatty()
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=iters, initial=start, unit="it", dynamic_ncols=True)
        self.t_last, self.it_last = time.perf_counter(), start

    def info(self, text: str) -> None:
        if self.active:
            (self.bar.write if self.bar else lambda s: print(s, file=sys.stderr))(text)

    def step(self, it: int, loss: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}", refresh=False)

    def _write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def scalars(self, it: int, values: dict) -> None:
        if not self.active:
            return
        now = time.perf_counter()
        speed = (it - self.it_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.it_last = now, it
        self._write({"iter": it, **values, "it_per_s": round(speed, 4), "time": time.time()})
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, it)
        if self.bar is None:
            eta = (self.iters - it) / max(speed, 1e-9)
            print(
                f"iter {it}/{self.iters} loss {values['loss']:.5f} lr {values['lr']:.3g} "
                f"{speed:.2f} it/s eta {time.strftime('%H:%M:%S', time.gmtime(eta))}",
                file=sys.stderr,
            )

    def validation(self, it: int, scores: dict, best: dict) -> None:
        if not self.active:
            return
        self._write({"iter": it, "val": scores, "best": best, "time": time.time()})
        if self.tb is not None:
            for name, s in scores.items():
                self.tb.add_scalar(f"val/{name}/psnr", s["psnr"], it)
                self.tb.add_scalar(f"val/{name}/ssim", s["ssim"], it)
        text = ", ".join(f"{n} {s['psnr']:.2f} dB / {s['ssim']:.4f}" for n, s in scores.items())
        self.info(f"val @ {it}: {text} (best {best['psnr']:.2f} dB @ {best['iter']})")

    def close(self) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if not self.file.closed:
            self.file.close()
