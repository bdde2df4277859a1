"""Training: config validation, schedules, EMA, data determinism, exact resume, DDP, precision."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from contrast_sr.cli import main
from contrast_sr.data.paired import PairedPatches, TrainSampler
from contrast_sr.errors import ContrastError, UsageError
from contrast_sr.train.checkpoint import list_checkpoints, load_latest
from contrast_sr.train.config import TrainConfig, load_config, parse_set
from contrast_sr.train.ema import EMA
from contrast_sr.train.loop import train
from contrast_sr.train.schedule import lr_at

from .conftest import REPO_ROOT, cli_env
from .tiny_sr import TinySR

SCALE = 2


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, data_dir) -> Path:
    """LR/HR pairs in the BasicSR layout where HR is the LR upscaled by pixel repetition, so
    ``hr[::s, ::s] == lr`` exactly (checks crop alignment and paired augmentation)."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "hr").mkdir()
    (root / "lr").mkdir()
    for path in sorted((data_dir / "train" / "T91").glob("*.bmp"))[:5]:
        lr = Image.open(path).convert("RGB").crop((0, 0, 40, 36))
        lr.save(root / "lr" / f"{path.stem}x{SCALE}.png")
        lr.resize((40 * SCALE, 36 * SCALE), Image.NEAREST).save(root / "hr" / f"{path.stem}.png")
    return root


def write_config(folder: Path, **sections) -> Path:
    cfg = {
        "model": {"name": "tests.tiny_sr:tiny_sr", "scale": SCALE, "dims": 8},
        "data": {
            "train": {
                "hr_dir": "hr",
                "lr_dir": "lr",
                "filename_tmpl": "{}x2",
                "patch_size": 12,
                "batch_size": 4,
                "workers": 0,
            }
        },
        "train": {"iters": 12, "checkpoint_every": 4, "log_every": 4, "lr": 1e-3},
    }
    for name, values in sections.items():
        cfg[name].update(values)
    path = folder / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def state_of(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------- config


def test_config_paths_resolve_against_the_config_folder(pairs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        write_config(pairs), ["train.iters=24", "data.val=null", "train.betas=[0.8, 0.9]"]
    )
    assert Path(cfg.data.train.hr_dir) == pairs / "hr"
    assert cfg.train.iters == 24 and cfg.data.val is None and cfg.train.betas == [0.8, 0.9]
    assert cfg.model.overrides == {"dims": 8}
    # --set paths are relative to the current folder
    (tmp_path / "other").mkdir()
    cfg = load_config(write_config(pairs), ["data.train.lr_dir=other"])
    assert Path(cfg.data.train.lr_dir) == tmp_path / "other"


@pytest.mark.parametrize(
    ("sets", "key", "why"),
    [
        (["train.itres=5"], "train.itres", "unknown key"),
        (["data.train.shuffle=true"], "data.train.shuffle", "unknown key"),
        (["train.lr=fast"], "train.lr", "expected a number"),
        (["train.iters=1.5"], "train.iters", "expected an integer"),
        (["train.compile=yes please"], "train.compile", "expected true or false"),
        (["data.train.hr_dir=no/such/folder"], "data.train.hr_dir", "folder not found"),
        (["data.val.hr_dir=[hr, missing]"], "data.val.hr_dir[1]", "folder not found"),
        (["train.optimizer=sgd"], "train.optimizer", "choose from adam, adamw"),
        (["train.milestones=[5, 2]"], "train.milestones", "increasing"),
        (["model.name=null"], "model.name", "expected a string"),
        (["train=3"], "train", "expected a section"),
    ],
)
def test_config_errors_name_the_key(pairs, monkeypatch, sets, key, why):
    monkeypatch.chdir(pairs)
    with pytest.raises(UsageError) as info:
        load_config(write_config(pairs), sets)
    assert f"'{key}'" in info.value.message and why in info.value.message


def test_config_errors_are_typed_with_the_dotted_key(pairs, monkeypatch):
    from contrast_sr.errors import ConfigError

    monkeypatch.chdir(pairs)
    for sets, key in [
        (["train.ema_decay=1"], "train.ema_decay"),
        (["data.val=[]"], "data.val.hr_dir"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config(write_config(pairs), sets)
        assert info.value.field == key and info.value.message.startswith(f"config key '{key}'")
    assert load_config(write_config(pairs), ["train.ema_decay=0"]).train.ema_decay == 0.0


def test_cli_config_error_is_one_line_exit_2(pairs, capsys):
    code = main(["train", str(write_config(pairs)), "--set", "train.loss=l3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: config key 'train.loss'")


def test_missing_required_key(tmp_path):
    (tmp_path / "c.yml").write_text("model: {scale: 2}\n")
    with pytest.raises(UsageError, match=r"'model.name': required"):
        load_config(tmp_path / "c.yml")


def test_parse_set_uses_yaml_values():
    assert parse_set("train.milestones=[1, 2]") == ("train.milestones", [1, 2])
    assert parse_set("data.val=null") == ("data.val", None)
    assert parse_set("train.compile=true") == ("train.compile", True)
    with pytest.raises(UsageError):
        parse_set("no-equals-sign")


# --------------------------------------------------------------------------- schedules, EMA


def test_multistep_values_at_milestones():
    cfg = TrainConfig(
        iters=500_000, lr=2e-4, milestones=[250_000, 400_000, 450_000, 475_000], gamma=0.5
    )
    assert lr_at(cfg, 1) == 2e-4
    assert lr_at(cfg, 249_999) == 2e-4
    assert lr_at(cfg, 250_000) == 1e-4
    assert lr_at(cfg, 399_999) == 1e-4
    assert lr_at(cfg, 400_000) == 5e-5
    assert lr_at(cfg, 450_000) == 2.5e-5
    assert lr_at(cfg, 500_000) == 1.25e-5


def test_warmup_and_cosine():
    cfg = TrainConfig(iters=1100, lr=1e-3, scheduler="cosine", warmup_iters=100, min_lr=1e-5)
    assert lr_at(cfg, 1) == pytest.approx(1e-5)
    assert lr_at(cfg, 50) == pytest.approx(5e-4)
    assert lr_at(cfg, 100) == pytest.approx(1e-3)
    assert lr_at(cfg, 600) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lr_at(cfg, 1100) == pytest.approx(1e-5)
    assert lr_at(cfg, 350) == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi / 4)) / 2)


def test_ema_math():
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    w0 = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.module.weight, 0.9 * w0 + 0.1 * (w0 + 1.0))
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    expected = 0.9 * (0.9 * w0 + 0.1 * (w0 + 1.0)) + 0.1 * (w0 + 2.0)
    torch.testing.assert_close(ema.module.weight, expected)
    assert not ema.module.weight.requires_grad


# --------------------------------------------------------------------------- data


def test_paired_patches_align_and_repeat(pairs):
    ds = PairedPatches(pairs / "hr", SCALE, 12, pairs / "lr", "{}x2", seed=3)
    seen_flips = set()
    for k in range(40):
        lr, hr = ds[k]
        assert lr.shape == (3, 12, 12) and hr.shape == (3, 24, 24)
        torch.testing.assert_close(hr[:, ::SCALE, ::SCALE], lr, rtol=0, atol=0)
        seen_flips.add(tuple(lr[:, 0, 0].tolist()))
        lr2, hr2 = ds[k]
        assert torch.equal(lr, lr2) and torch.equal(hr, hr2)
    assert len(seen_flips) > 5  # random crops actually move
    other = PairedPatches(pairs / "hr", SCALE, 12, pairs / "lr", "{}x2", seed=4)
    assert not torch.equal(ds[0][0], other[0][0])


def test_epochs_visit_every_image_once(pairs):
    ds = PairedPatches(pairs / "hr", SCALE, 12, pairs / "lr", "{}x2", seed=0)
    for epoch in range(2):
        idx = [ds.image_index(epoch * len(ds) + i) for i in range(len(ds))]
        assert sorted(idx) == list(range(len(ds)))


def test_sampler_shards_disjoint_and_cover():
    ranks = [list(TrainSampler(2, 5, batch=3, rank=r, world=2)) for r in range(2)]
    assert set(ranks[0]).isdisjoint(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == list(range(2 * 6, 5 * 6))
    assert list(TrainSampler(4, 5, batch=3)) == [12, 13, 14]


def test_hr_only_lr_matches_full_image_downscale(tmp_path, data_dir):
    """On-the-fly LR patches equal the crop of the evaluation's full-image LR."""
    from contrast_sr.data import bicubic_lr
    from contrast_sr.data.paired import read_rgb, to_tensor

    src = sorted((data_dir / "train" / "T91").glob("*.bmp"))[0]
    (tmp_path / "hr").mkdir()
    Image.open(src).convert("RGB").save(tmp_path / "hr" / "a.png")
    hr_full = read_rgb(tmp_path / "hr" / "a.png")
    s, p = 3, 10
    h, w = (hr_full.shape[0] // s) * s, (hr_full.shape[1] // s) * s
    hr_t = torch.from_numpy(hr_full[:h, :w].transpose(2, 0, 1).copy())
    lr_full = bicubic_lr(hr_t, s).float() / 255
    ds = PairedPatches(tmp_path / "hr", s, p, hflip=False, rot90=False, seed=0)
    exact = 0
    for k in range(30):
        lr, hr = ds[k]
        rng = np.random.default_rng([0, 1, k])
        y, x = int(rng.integers(0, h // s - p + 1)), int(rng.integers(0, w // s - p + 1))
        assert torch.equal(hr, to_tensor(hr_full[y * s : (y + p) * s, x * s : (x + p) * s]))
        # a value sitting on .5 may round the other way (float64 sums in another order)
        diff = (lr - lr_full[:, y : y + p, x : x + p]).abs().max().item()
        assert diff <= 1 / 255 + 1e-6
        exact += diff == 0
    assert exact >= 27


# --------------------------------------------------------------------------- the loop


def run_in_process(pairs, out, sets=(), resume=False, model_fn=None):
    cfg = load_config(write_config(pairs), list(sets))
    return train(cfg, out, resume=resume, model_fn=model_fn)


def test_same_seed_bit_identical_different_seed_differs(pairs, tmp_path):
    run_in_process(pairs, tmp_path / "a")
    run_in_process(pairs, tmp_path / "b", ["data.train.workers=2"])
    run_in_process(pairs, tmp_path / "c", ["train.seed=1"])
    a, b, c = (state_of(tmp_path / n) for n in "abc")
    assert_same_weights(a, b)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    # the loss went down and the schedule of records is complete
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert [yaml.safe_load(ln)["iter"] for ln in lines] == [4, 8, 12]
    assert [n for n, _ in list_checkpoints(tmp_path / "a")] == [4, 8, 12]


def test_resume_in_process_equals_uninterrupted(pairs, tmp_path):
    sets = ["train.scheduler=cosine", "train.warmup_iters=3", "train.grad_clip=0.5"]
    run_in_process(pairs, tmp_path / "full", sets)
    summary = run_in_process(pairs, tmp_path / "part", sets)
    assert summary["trained"] == 12
    for n in (12, 8):
        (tmp_path / "part" / "checkpoints" / f"iter_{n}.pt").unlink()
    (tmp_path / "part" / "model.safetensors").unlink()
    summary = run_in_process(pairs, tmp_path / "part", sets, resume=True)
    assert summary["trained"] == 8
    assert_same_weights(state_of(tmp_path / "full"), state_of(tmp_path / "part"))


def test_refuses_to_overwrite_a_run(pairs, tmp_path):
    run_in_process(pairs, tmp_path / "a", ["train.iters=4"])
    with pytest.raises(UsageError, match=r"iteration 4.*use --resume to continue it"):
        run_in_process(pairs, tmp_path / "a", ["train.iters=4"])


def test_keep_checkpoints_and_damaged_newest_falls_back(pairs, tmp_path):
    run_in_process(pairs, tmp_path / "a", ["train.keep_checkpoints=2", "train.checkpoint_every=2"])
    assert [n for n, _ in list_checkpoints(tmp_path / "a")] == [10, 12]
    (tmp_path / "a" / "checkpoints" / "iter_12.pt").write_bytes(b"torn")
    path, state = load_latest(tmp_path / "a")
    assert path.name == "iter_10.pt" and state["iteration"] == 10


def test_bf16_autocast_step_on_cpu(pairs, tmp_path):
    model = TinySR(SCALE, 8)
    dtypes = []
    model.body[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = run_in_process(
        pairs, tmp_path / "a", ["train.precision=bf16", "train.iters=2"], model_fn=lambda: model
    )
    assert dtypes and all(d == torch.bfloat16 for d in dtypes)
    assert math.isfinite(summary["loss"])
    assert any(not torch.equal(before[k], model.state_dict()[k]) for k in before)


class _Exploding(TinySR):
    """Returns NaN from its 7th forward pass on."""

    calls = 0

    def forward(self, x):
        type(self).calls += 1
        out = super().forward(x)
        return out * float("nan") if type(self).calls >= 7 else out


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(pairs, tmp_path):
    _Exploding.calls = 0
    with pytest.raises(ContrastError) as info:
        run_in_process(pairs, tmp_path / "a", model_fn=lambda: _Exploding(SCALE, 8))
    assert "iteration 7" in info.value.message and "iter_4.pt" in info.value.message
    assert [n for n, _ in list_checkpoints(tmp_path / "a")] == [4]
    assert not (tmp_path / "a" / "model.safetensors").exists()


def test_pretrained_init_skips_mismatched_upsampler(pairs, tmp_path, capsys):
    from safetensors.torch import save_file

    x2 = TinySR(2, 8)
    save_file(x2.state_dict(), str(tmp_path / "x2.safetensors"))
    cfg = load_config(
        write_config(pairs), [f"model.pretrained={tmp_path / 'x2.safetensors'}", "model.scale=3"]
    )
    from contrast_sr.train.model import build_model

    x3 = build_model(cfg.model)
    assert torch.equal(x3.body[0].weight, x2.body[0].weight)
    assert x3.body[2].weight.shape[0] == 27
    assert "2 tensors loaded, 2 skipped" in capsys.readouterr().err
    cfg.model.strict_load = True
    with pytest.raises(UsageError, match="shape mismatch"):
        build_model(cfg.model)


def test_plot_two_runs(pairs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run_in_process(pairs, tmp_path / "a", ["train.iters=8"])
    run_in_process(pairs, tmp_path / "b", ["train.iters=8", "train.lr=1e-4"])
    capsys.readouterr()
    assert (
        main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "f.png")]) == 0
    )
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == (
        f"wrote {tmp_path / 'f.png'}: training loss and validation PSNR of 2 run(s)"
    )
    assert main(["plot", str(tmp_path / "nope"), "-o", str(tmp_path / "g.png")]) == 1


# --------------------------------------------------------------------------- subprocess runs


def _cli(args, **kw):
    env = cli_env()
    env["PYTHONPATH"] += os.pathsep + str(REPO_ROOT)  # tests.tiny_sr
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw
    )


def test_sigkill_then_resume_is_bit_identical(pairs, tmp_path):
    """A training process killed with SIGKILL right after a checkpoint, resumed with --resume,
    ends with exactly the weights of an uninterrupted run (both finish in this process with the
    same thread count as the killed one)."""
    cfg = str(write_config(pairs))
    sets = ["--set", "train.iters=40", "--set", "train.checkpoint_every=4"]
    sets += ["--set", "train.log_every=10"]
    part = _cli(["-m", "contrast_sr", "train", cfg, "-o", str(tmp_path / "part"), *sets])
    deadline = time.time() + 120
    while not list_checkpoints(tmp_path / "part") and time.time() < deadline:
        time.sleep(0.002)
    part.send_signal(signal.SIGKILL)
    part.wait()
    assert not (tmp_path / "part" / "model.safetensors").exists(), "killed too late"
    killed_at = list_checkpoints(tmp_path / "part")[-1][0]
    assert killed_at < 40
    threads = torch.get_num_threads()
    one = ["--threads", "1"]  # as OMP_NUM_THREADS=1 in the killed process
    try:
        assert main(["train", cfg, "-o", str(tmp_path / "part"), "--resume", *sets, *one]) == 0
        assert main(["train", cfg, "-o", str(tmp_path / "full"), *sets, *one]) == 0
    finally:
        torch.set_num_threads(threads)
    assert_same_weights(state_of(tmp_path / "full"), state_of(tmp_path / "part"))
    iters = [yaml.safe_load(ln)["iter"] for ln in (tmp_path / "part" / "metrics.jsonl").open()]
    assert iters == [10, 20, 30, 40]  # records after the checkpoint were replaced, not doubled


def test_torchrun_two_processes_gloo(pairs, tmp_path):
    cfg = str(write_config(pairs))
    proc = _cli(
        [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            "-m",
            "contrast_sr",
            "train",
            cfg,
            "-o",
            str(tmp_path / "ddp"),
            "--json",
        ],
        cwd=tmp_path,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "ddp: 2 ranks hold identical weights" in err.decode()
    summary = yaml.safe_load(out.decode().strip().splitlines()[-1])
    assert summary["effective_batch"] == 8 and len(out.decode().strip().splitlines()) == 1
    # one writer: each log record appears once, one set of checkpoints, nothing elsewhere
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert [yaml.safe_load(ln)["iter"] for ln in lines] == [4, 8, 12]
    assert [n for n, _ in list_checkpoints(tmp_path / "ddp")] == [4, 8, 12]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]


def test_validation_matches_eval_and_tracks_best(pairs, tmp_path):
    from safetensors.torch import load_file

    from contrast_sr.evaluate import evaluate, model_sr

    run = tmp_path / "a"
    run_in_process(pairs, run, [f"data.val={pairs / 'hr'}", "train.val_every=6"])
    records = [yaml.safe_load(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if "val" in r]
    assert [r["iter"] for r in vals] == [6, 12]
    name = pairs.name  # `.../<name>/hr` is reported as <name>, as `contrast-sr eval` does
    best = vals[-1]["best"]
    assert best["psnr"] == max(r["val"][name]["psnr"] for r in vals) and best["set"] == name
    assert (run / "best.safetensors").is_file()
    # the final EMA weights evaluated by `contrast-sr eval`'s code give the logged score
    model = TinySR(SCALE, 8)
    model.load_state_dict(load_file(str(run / "model.safetensors")))
    result = evaluate(model_sr(model), pairs / "hr", SCALE, progress=False)
    assert result.psnr_y == vals[-1]["val"][name]["psnr"]
    assert result.ssim_y == vals[-1]["val"][name]["ssim"]


# --------------------------------------------------------------------------- shipped configs

CONFIGS = REPO_ROOT / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "research").glob("*.yml")), ids=lambda p: p.stem)
def test_research_recipes(path, data_dir, tmp_path):
    from contrast_sr import list_models

    weights = tmp_path / "x2.safetensors"
    weights.write_bytes(b"")
    t91, set5 = data_dir / "train" / "T91", data_dir / "benchmark" / "Set5" / "HR"
    sets = [f"data.train.hr_dir={t91}", f"data.train.lr_dir={t91}", f"data.val.hr_dir=[{set5}]"]
    raw = yaml.safe_load(path.read_text())
    if raw["model"].get("pretrained"):
        sets.append(f"model.pretrained={weights}")
    cfg = load_config(path, sets)
    name, scale = path.stem.rsplit("_x", 1)
    assert cfg.model.name == name and name in list_models() and cfg.model.scale == int(scale)
    t = cfg.train
    assert cfg.data.train.patch_size == 64 and t.batch_size == 32 and t.optimizer == "adam"
    if cfg.model.scale == 2 or name == "contrast":
        assert (t.lr, t.iters) == (2e-4, 500_000)
        assert t.milestones == [250_000, 400_000, 450_000, 475_000]
        assert cfg.model.pretrained is None
    else:  # fine-tuned from the x2 weights
        assert cfg.model.pretrained == str(weights) and (t.lr, t.iters) == (1e-4, 250_000)
    assert "DF2K" in raw["data"]["train"]["hr_dir"]


def test_smoke_config_trains_a_registered_model_reproducibly(tmp_path, data_dir):
    from contrast_sr import load_model

    sets = ["--set", "train.iters=2", "--set", "data.val=null", "--set", "train.checkpoint_every=1"]
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["train", str(CONFIGS / "smoke.yml"), "-o", str(out), *sets]) == 0
    a, b = state_of(tmp_path / "a"), state_of(tmp_path / "b")
    assert_same_weights(a, b)
    model = load_model(tmp_path / "a" / "model.safetensors")
    assert model.scale == 4 and model.config.dim == 12
    # the EMA weights were written, not the raw ones
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "iter_2.pt", weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt["ema"][k])
    assert any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["model"])


def test_plot_without_matplotlib_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"iter": 1, "loss": 0.1, "lr": 0.001}\n')
    assert main(["plot", str(tmp_path / "run"), "-o", str(tmp_path / "f.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matplotlib is not installed" in err[0]
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize(
    ("override", "key"),
    [("model.name=nope", "model.name"), ("model.dimz=3", "model.dimz"), ("model.scale=5", "model")],
)
def test_model_errors_name_the_key_and_write_nothing(tmp_path, capsys, override, key, data_dir):
    out = tmp_path / "run"
    code = main(["train", str(CONFIGS / "smoke.yml"), "-o", str(out), "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: config key '{key}'")
    assert not out.exists()


def strict_tiny_sr(scale: int = 2, **options) -> TinySR:
    """A factory that rejects unknown options the way the model registry does: typed."""
    from contrast_sr.errors import ConfigError

    for name in options:
        if name != "dims":
            raise ConfigError(name, "unknown field", section="model")
    return TinySR(scale, **options)


def test_model_errors_map_by_type_and_field():
    from contrast_sr.train.config import ModelConfig
    from contrast_sr.train.model import build_model

    name = "tests.test_train:strict_tiny_sr"
    assert build_model(ModelConfig(name=name, scale=2, overrides={"dims": 4})).scale == 2
    with pytest.raises(UsageError) as info:
        build_model(ModelConfig(name=name, scale=2, overrides={"depht": [6]}))
    assert info.value.message.startswith("config key 'model.depht': ")
    with pytest.raises(UsageError) as info:
        build_model(ModelConfig(name="no_such_model", scale=2))
    assert info.value.message.startswith("config key 'model.name': ")
