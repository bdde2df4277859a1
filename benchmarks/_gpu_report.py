"""gpu_check: the markdown report (status of every item, then one table per measurement)."""

from __future__ import annotations

from _gpu_setup import CLAIM_SLACK, CLAIMS


def _note(result: dict) -> str:
    text = result.get("note") or result.get("error") or ""
    return str(text).replace("|", "/").replace("\n", " ")[:160]


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _num(value) -> str:
    return f"{value:.2e}" if isinstance(value, float) else "-"


def _ms(entry: dict | None) -> str:
    return f"{entry['median_ms']:.3f}" if entry and "median_ms" in entry else "-"


def _scan_rows(details: dict) -> list[list]:
    rows = []
    for key, row in details.items():
        if not isinstance(row, dict) or key == "shape_b_L_dim":
            continue
        if "skipped" in row:
            rows.append([key, *["skipped"] * 6])
            continue
        rows.append(
            [
                key,
                _ms(row.get("triton_fwd")),
                _ms(row.get("torch_fwd")),
                row.get("speedup_fwd", "-"),
                _ms(row.get("triton_fwd_bwd")),
                _ms(row.get("torch_fwd_bwd")),
                row.get("speedup_fwd_bwd", "-"),
            ]
        )
    return rows


def _train_lines(details: dict) -> list[str]:
    rows = []
    for key, row in details["steps"].items():
        if "skipped" in row:
            rows.append([key, "skipped", "", ""])
        else:
            rows.append([key, _ms(row), row["min_ms"], row["peak_mib"] or "-"])
    lines = _table(["model precision", "step ms (median)", "min ms", "peak MiB"], rows)
    claim_rows = []
    for key, entry in details["claims"].items():
        claim_rows.append(
            [
                key,
                entry.get("step_speedup", "-"),
                entry.get("speed_claim_holds", "-"),
                entry.get("memory_saving", "-"),
                entry.get("memory_claim_holds", "-"),
            ]
        )
    head = ["vs hat_light", "speedup (t_hat/t - 1)", "41% holds", "memory saving", "29% holds"]
    note = (
        f"Claims (seed, RTX 3060): {CLAIMS['step_speedup']:.0%} faster per step, "
        f"{CLAIMS['memory_saving']:.0%} less memory; 'holds' = measured >= claim - "
        f"{CLAIM_SLACK:.0%}."
    )
    return [*lines, "", *_table(head, claim_rows), "", note]


def _attention_lines(details: dict) -> list[str]:
    rows = [[name, f"{err:.2e}"] for name, err in details["equality"].items()]
    lines = [*_table(["module (SDPA vs explicit)", "max rel error"], rows), ""]
    rows = []
    for model, modes in details["backends"].items():
        for mode, kernels in modes.items():
            rows.append([model, mode, "; ".join(kernels) or "no attention"])
    return lines + _table(["model", "mode", "module: SDPA kernel"], rows)


def markdown(report: dict) -> str:
    meta, results = report["meta"], report["results"]
    env = results.get("env", {}).get("details", {})
    title = "gpu_check (dry run on CPU)" if meta["dry_run"] else "gpu_check"
    lines = [
        f"# {title}",
        "",
        f"torch {env.get('torch')}, CUDA {env.get('cuda')}, triton {env.get('triton')}, "
        f"device {env.get('gpu', env.get('device'))}; {meta.get('elapsed_s')} s of a "
        f"{meta['budget_s']:.0f} s budget.",
        "",
    ]
    rows = [[n, r["kind"], r["status"], r["seconds"], _note(r)] for n, r in results.items()]
    lines += _table(["item", "kind", "status", "s", "note"], rows)
    for name, result in results.items():
        details = result.get("details")
        if not details or result["status"] in ("fail", "skipped"):
            continue
        if name.startswith("triton_"):
            rows = [
                [case, _num(r.get("error")), _num(r.get("tolerance")), r.get("ok", r.get("note"))]
                for case, r in details.items()
            ]
            lines += ["", f"## {name}", "", *_table(["case", "error", "tolerance", "ok"], rows)]
        elif name == "bench_scan":
            head = ["N dtype", "triton fwd ms", "torch fwd ms", "x", "triton f+b ms"]
            head += ["torch f+b ms", "x"]
            shape = details["shape_b_L_dim"]
            lines += ["", f"## scan, (b, L, dim) = {tuple(shape)}; triton: {details['triton']}"]
            lines += ["", *_table(head, _scan_rows(details))]
        elif name == "bench_train":
            s = details["setup"]
            lines += [
                "",
                f"## training step, batch {s['batch']}, LR {s['lr_patch']}, x{s['scale']}",
            ]
            lines += ["", *_train_lines(details)]
        elif name == "bench_inference":
            rows = [
                [k, v.get("output_mp", "-"), v.get("seconds", "skipped"), v.get("mp_per_s", "-")]
                for k, v in details.items()
            ]
            lines += ["", "## x4 upscaling (Upscaler; LR size; output MP/s)", ""]
            lines += _table(["model LR precision", "output MP", "s", "MP/s"], rows)
        elif name == "attention_sdpa":
            lines += ["", "## attention: SDPA kernels", "", *_attention_lines(details)]
    return "\n".join(lines) + "\n"
