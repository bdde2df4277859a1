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

import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from contrast_sr.data.degradations import parse_degradation
from contrast_sr.data.paired import PairedPatches, TrainSampler, seed_worker
from contrast_sr.errors import ContrastError, UsageError
from contrast_sr.train.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_latest,
    prune_checkpoints,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from contrast_sr.train.config import Config, TrainConfig
from contrast_sr.train.distributed import Distributed, init_distributed
from contrast_sr.train.ema import EMA
from contrast_sr.train.log import RunLog
from contrast_sr.train.model import build_model, save_final
from contrast_sr.train.schedule import lr_at
from contrast_sr.train.validate import validate
from contrast_sr.utils.device import autocast


def loss_function(
    name: str, eps: float = 1e-3
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(sr, hr) -> scalar`` for l1 | mse | charbonnier (``mean(sqrt((sr-hr)^2 + eps^2))``)."""
    if name == "l1":
        return F.l1_loss
    if name == "mse":
        return F.mse_loss
    return lambda sr, hr: torch.sqrt((sr - hr) ** 2 + eps * eps).mean()


def make_optimizer(cfg: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam or AdamW with the configured learning rate, betas and weight decay."""
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def train(
    cfg: Config,
    run_dir: str | Path,
    resume: bool = False,
    model_fn: Callable[[], nn.Module] | None = None,
) -> dict:
    """Train as configured; writes ``run_dir`` (rank 0) and returns a summary dict.

    ``model_fn() -> nn.Module`` replaces the config's model (library use and tests)."""
    t = cfg.train
    run_dir = Path(run_dir)
    ddp = init_distributed(t.device)  # torchrun sets RANK / WORLD_SIZE / LOCAL_RANK
    device, master = ddp.device, ddp.master
    batch = per_process_batch(cfg, ddp.world)
    effective_batch = batch * ddp.world

    # --- the run folder: never mix two runs
    existing = list_checkpoints(run_dir)
    if not resume and (existing or (run_dir / "metrics.jsonl").exists()):
        what = f"last checkpoint: iteration {existing[-1][0]}" if existing else "no checkpoint yet"
        raise UsageError(
            f"output {run_dir}",
            f"already holds a run ({what}; stopped or finished): use --resume to continue it, "
            "or another --output",
        )
    ddp.barrier()  # every rank has looked before rank 0 writes anything
    seed_everything(t, device)

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
    if resume:  # the config's model must be the run's, unless model_fn replaces it
        same_model = None if model_fn else cfg.to_dict()["model"]
        start, best = resume_from(run_dir, model, ema, optimizer, scaler, same_model, master)

    forward = ddp.wrap(model)
    if t.compile:
        forward = torch.compile(forward)

    # --- data: sample ids are a pure function of (seed, iteration), so resume is exact
    d = cfg.data.train
    dataset = PairedPatches(
        d.hr_dir,
        scale,
        d.patch_size,
        d.lr_dir,
        d.filename_tmpl,
        d.hflip,
        d.rot90,
        t.seed,
        d.cache,
        parse_degradation(d.degradation),
    )
    loader = make_loader(dataset, cfg, batch, start, ddp)

    log = RunLog(run_dir, start, t.iters, master, cfg)  # rank 0 only
    if master:
        log.info(
            f"training {cfg.model.name} x{scale}: {sum(p.numel() for p in model.parameters()):,} "
            f"params, {len(dataset)} images, batch {batch} x {ddp.world} process(es) = "
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
        ddp.all_reduce(finite, dist.ReduceOp.MIN)  # every rank stops together
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
            ddp.all_reduce(mean)  # the loss averaged over all ranks
            log.scalars(it, {"loss": (mean[0] / mean[1]).item(), "lr": lr_now})
            running, running_n = 0.0, 0

        val_now = cfg.data.val is not None and (it % t.val_every == 0 or it == t.iters)
        if val_now and master:
            net = ema.module if ema is not None else model
            v = cfg.data.val
            scores = validate(net, v.hr_dir, scale, device, t.precision, v.lr_degradation)
            model.train()
            first = next(iter(scores.values()))
            if best is None or first["psnr"] > best["psnr"]:
                best = {"iter": it, "set": next(iter(scores)), **first}
                save_final(net, run_dir / "best.safetensors")
            log.validation(it, scores, best)
        if val_now:
            ddp.barrier()  # other ranks wait while rank 0 validates

        if master and (it % t.checkpoint_every == 0 or it == t.iters):
            state = training_state(
                it,
                model,
                ema,
                optimizer,
                scaler,
                scheduler=t.scheduler,
                best=best,
                world_size=ddp.world,
                config=cfg.to_dict(),
            )
            save_checkpoint(checkpoint_path(run_dir, it), state)
            prune_checkpoints(run_dir, t.keep_checkpoints)

    # --- the end: ranks agree, final weights
    seconds = time.perf_counter() - t0
    if ddp.world > 1:
        ddp.check_same_weights(model)
        if master:
            log.info(f"ddp: {ddp.world} ranks hold identical weights")
    final = run_dir / "model.safetensors"
    if master:
        save_final(ema.module if ema is not None else model, final)
        log.info(f"done: {it - start} iterations in {seconds:.1f}s, weights in {final}")
    log.close()
    ddp.close()
    return {
        "iterations": it,
        "trained": it - start,
        "seconds": seconds,
        "loss": last_loss,
        "best": best,
        "model": str(final),
        "effective_batch": effective_batch,
    }


def resume_from(
    run_dir: Path,
    model: nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    model_section: dict | None = None,
    verbose: bool = True,
) -> tuple[int, dict | None]:
    """Load the newest complete checkpoint of ``run_dir`` into the objects and the global RNGs;
    returns ``(iteration, best score)``, ``(0, None)`` when there is none. ``model_section``:
    the config's ``model`` section, which must be the run's."""
    found = load_latest(run_dir)
    if found is None:
        return 0, None
    path, state = found
    if model_section is not None and state["config"].get("model") != model_section:
        raise UsageError(f"--resume {path}", "the config's model section differs from the run")
    start, best = restore_training_state(state, model, ema, optimizer, scaler)
    if verbose:
        print(f"resuming from {path} (iteration {start})", file=sys.stderr)
    return start, best


def make_loader(
    dataset: PairedPatches, cfg: Config, batch: int, start: int, ddp: Distributed
) -> DataLoader:
    """Batches for iterations ``start + 1 .. train.iters`` of this rank (workers seeded)."""
    workers = cfg.data.train.workers
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=TrainSampler(start, cfg.train.iters, batch, ddp.rank, ddp.world),
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(cfg.train.seed),  # keeps the global RNG untouched
        pin_memory=ddp.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )


def per_process_batch(cfg: Config, world: int) -> int:
    """The batch of one process: ``train.batch_size`` (the effective batch) split over the
    ``world`` processes when it is set, else ``data.train.batch_size``."""
    total = cfg.train.batch_size
    if total is None:
        return cfg.data.train.batch_size
    if total % world:
        raise UsageError(
            "config key 'train.batch_size'", f"{total} does not split over {world} ranks"
        )
    return total // world


def seed_everything(t: TrainConfig, device: torch.device) -> None:
    """Seed Python, NumPy and torch with ``train.seed``; deterministic kernels if asked."""
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)
    random.seed(t.seed)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
