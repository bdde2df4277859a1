"""The training loop: one function, top to bottom (nanoGPT style).

    setup (distributed, seed, model, EMA, optimizer, data) -> resume -> for each iteration:
    lr = schedule(n); loss = loss_fn(model(lr_patch), hr_patch); backward; clip; step; EMA;
    log / validate / checkpoint  -> final weights

Run it as ``contrast-sr train CONFIG`` or, on several GPUs/nodes,
``torchrun --nproc_per_node N -m contrast_sr train CONFIG`` (DDP; NCCL on GPU, gloo on CPU).
Every rank computes; only rank 0 writes files. The effective batch is the per-process batch
times the number of processes (set ``train.batch_size`` to fix the effective batch instead).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader

from contrast_sr.data.paired import PairedPatches, TrainSampler, seed_worker
from contrast_sr.errors import ContrastError, UsageError
from contrast_sr.train.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_latest,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from contrast_sr.train.config import Config
from contrast_sr.train.ema import EMA
from contrast_sr.train.model import build_model, save_final
from contrast_sr.train.schedule import lr_at
from contrast_sr.train.validate import validate
from contrast_sr.utils.device import autocast, resolve_device
from contrast_sr.utils.fs import atomic_write


def loss_function(name: str, eps: float = 1e-3):
    """``(sr, hr) -> scalar`` for l1 | mse | charbonnier (``mean(sqrt((sr-hr)^2 + eps^2))``)."""
    if name == "l1":
        return F.l1_loss
    if name == "mse":
        return F.mse_loss
    return lambda sr, hr: torch.sqrt((sr - hr) ** 2 + eps * eps).mean()


def make_optimizer(cfg, params) -> torch.optim.Optimizer:
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def train(cfg: Config, run_dir: str | Path, resume: bool = False, model_fn=None) -> dict:
    """Train as configured; writes ``run_dir`` (rank 0) and returns a summary dict.

    ``model_fn() -> nn.Module`` replaces the config's model (library use and tests)."""
    t = cfg.train
    run_dir = Path(run_dir)

    # --- distributed setup: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(t.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        own_group = not dist.is_initialized()
        if own_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    if t.batch_size is not None:
        if t.batch_size % world:
            raise UsageError(
                "config key 'train.batch_size'", f"{t.batch_size} does not split over {world} ranks"
            )
        batch = t.batch_size // world
    else:
        batch = cfg.data.train.batch_size
    effective_batch = batch * world

    # --- the run folder: never mix two runs
    existing = list_checkpoints(run_dir)
    if not resume and (existing or (run_dir / "metrics.jsonl").exists()):
        raise UsageError(
            f"output {run_dir}", "already holds a run (use --resume, or another --output)"
        )
    if world > 1:
        dist.barrier()  # every rank has looked before rank 0 writes anything

    # --- reproducibility
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)
    import random

    random.seed(t.seed)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # --- model, EMA, optimizer, loss
    model = (model_fn or (lambda: build_model(cfg.model)))().to(device)
    scale = int(getattr(model, "scale", cfg.model.scale))
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, t.ema_decay) if t.ema_decay > 0 else None
    optimizer = make_optimizer(t, [p for p in model.parameters() if p.requires_grad])
    scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
    criterion = loss_function(t.loss, t.charbonnier_eps)

    # --- resume: weights, EMA, optimizer, scaler, RNG states, iteration, best score
    start, best = 0, None
    found = load_latest(run_dir) if resume else None
    if found is not None:
        path, state = found
        saved_model = state["config"].get("model")
        if model_fn is None and saved_model != cfg.to_dict()["model"]:
            raise UsageError(f"--resume {path}", "the config's model section differs from the run")
        model.load_state_dict(state["model"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start, best = int(state["iteration"]), state.get("best")
        if master:
            print(f"resuming from {path} (iteration {start})", file=sys.stderr)

    forward = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        forward = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if t.compile:
        forward = torch.compile(forward)

    # --- data: sample ids are a pure function of (seed, iteration), so resume is exact
    d = cfg.data.train
    dataset = PairedPatches(
        d.hr_dir, scale, d.patch_size, d.lr_dir, d.filename_tmpl, d.hflip, d.rot90, t.seed, d.cache
    )
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=TrainSampler(start, t.iters, batch, rank, world),
        num_workers=d.workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(t.seed),  # keeps the global RNG untouched
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if d.workers > 0 else None,
    )

    # --- logging (rank 0 only)
    log = _Logger(run_dir, start, t.iters, master, cfg)
    if master:
        log.info(
            f"training {cfg.model.name} x{scale}: {sum(p.numel() for p in model.parameters()):,} "
            f"params, {len(dataset)} images, batch {batch} x {world} process(es) = "
            f"{effective_batch}, iterations {start}->{t.iters} on {device}"
        )

    # --- the loop
    model.train()
    running, running_n, last_loss = 0.0, 0, float("nan")
    t0 = time.perf_counter()
    it = start
    for it, (lr_img, hr_img) in enumerate(loader, start=start + 1):
        lr_img = lr_img.to(device, non_blocking=True)
        hr_img = hr_img.to(device, non_blocking=True)
        if t.channels_last:
            lr_img = lr_img.contiguous(memory_format=torch.channels_last)
        lr_now = lr_at(t, it)
        for group in optimizer.param_groups:
            group["lr"] = lr_now

        with autocast(device, t.precision):
            sr = forward(lr_img)
        loss = criterion(sr.float(), hr_img)

        finite = torch.isfinite(loss.detach()).float()
        if world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            last = list_checkpoints(run_dir)
            keep = f"last good checkpoint: {last[-1][1]}" if last else "no checkpoint yet"
            log.close()
            raise ContrastError(
                f"training stopped at iteration {it}",
                f"the loss is {loss.item()} (not finite); nothing was saved after it; {keep} "
                "(lower train.lr, set train.grad_clip, or use precision fp32/bf16)",
            )

        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if t.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            ema.update(model)

        last_loss = loss.item()
        running += last_loss
        running_n += 1
        log.step(it, last_loss, lr_now)
        if it % t.log_every == 0 or it == t.iters:
            mean = torch.tensor([running, running_n], dtype=torch.float64, device=device)
            if world > 1:
                dist.all_reduce(mean)  # the loss averaged over all ranks
            log.scalars(it, {"loss": (mean[0] / mean[1]).item(), "lr": lr_now})
            running, running_n = 0.0, 0

        val_now = cfg.data.val is not None and (it % t.val_every == 0 or it == t.iters)
        if val_now and master:
            net = ema.module if ema is not None else model
            scores = validate(net, cfg.data.val.hr_dir, scale, device, t.precision)
            model.train()
            first = next(iter(scores.values()))
            if best is None or first["psnr"] > best["psnr"]:
                best = {"iter": it, "set": next(iter(scores)), **first}
                save_final(net, run_dir / "best.safetensors")
            log.validation(it, scores, best)
        if val_now and world > 1:
            dist.barrier()  # other ranks wait while rank 0 validates

        if master and (it % t.checkpoint_every == 0 or it == t.iters):
            state = {
                "iteration": it,
                "model": model.state_dict(),
                "ema": None if ema is None else ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "scheduler": {"name": t.scheduler, "iteration": it},
                "rng": rng_state(),
                "best": best,
                "world_size": world,
                "config": cfg.to_dict(),
            }
            save_checkpoint(checkpoint_path(run_dir, it), state)
            prune_checkpoints(run_dir, t.keep_checkpoints)

    # --- the end: ranks agree, final weights
    seconds = time.perf_counter() - t0
    if world > 1:
        checksum = torch.tensor(
            [sum(p.detach().double().sum().item() for p in model.parameters())], device=device
        )
        gathered = [torch.zeros_like(checksum) for _ in range(world)]
        dist.all_gather(gathered, checksum)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise ContrastError("ddp", f"ranks hold different weights: {gathered}")
        if master:
            log.info(f"ddp: {world} ranks hold identical weights")
    final = run_dir / "model.safetensors"
    if master:
        save_final(ema.module if ema is not None else model, final)
        log.info(f"done: {it - start} iterations in {seconds:.1f}s, weights in {final}")
    log.close()
    if world > 1:
        dist.barrier()
        if own_group:
            dist.destroy_process_group()
    return {
        "iterations": it,
        "trained": it - start,
        "seconds": seconds,
        "loss": last_loss,
        "best": best,
        "model": str(final),
        "effective_batch": effective_batch,
    }


class _Logger:
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
