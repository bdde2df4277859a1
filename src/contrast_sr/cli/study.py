"""``contrast-sr study``: list the claim studies, run them at a budget, write the report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from contrast_sr.cli.threads_arg import add_threads_argument


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "study",
        help="re-run the research notes' claims (list | run CLAIM... | report DIR)",
        description="Re-run the claims of the research notes (configs/studies/claim-*.yml) at a "
        "budget (smoke: seconds; cpu: a 2-core machine; paper: GPUs) and report the verdicts.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="{list,run,report}")
    ls = sub.add_parser("list", help="the claims, their arms and parameter counts")
    ls.add_argument("--budget", default="cpu", help="arms of this budget (default cpu)")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    run = sub.add_parser("run", help="train, evaluate and measure claims (resumable)")
    run.add_argument("claims", nargs="+", metavar="CLAIM", help="claim-1 ... claim-8, or all")
    run.add_argument("--budget", default="cpu", help="smoke | cpu | paper (default cpu)")
    run.add_argument("--output", "-o", required=True, help="study folder (rerun to resume)")
    add_threads_argument(run)
    run.add_argument(
        "--remeasure",
        nargs="?",
        const="all",
        choices=("speed", "all"),
        default=None,
        help="redo the speed (or all) measurements from the trained arms, e.g. on an idle machine",
    )
    rep = sub.add_parser("report", help="write README.md and figures from a study folder")
    rep.add_argument("folder", metavar="DIR", help="the --output of study run")
    rep.add_argument("--output", "-o", default=None, help="report folder (default DIR/report)")
    for s in (ls, run, rep):
        s.add_argument("--studies", default=None, help="folder of claim files (configs/studies)")
    p.set_defaults(func=run_command, flag_names={"claim": "CLAIM", "folder": "DIR"})
    return p


def _names(claims: list[str], folder: Path | None) -> list[str]:
    from contrast_sr.study.spec import study_names

    known = study_names(folder)
    names: list[str] = []
    for c in claims:
        names += known if c == "all" else [c if c.startswith("claim-") else f"claim-{c}"]
    return list(dict.fromkeys(names))


def run_command(args: argparse.Namespace) -> int:
    from contrast_sr.study.spec import load_budget, load_study

    folder = Path(args.studies) if args.studies else None
    if args.action == "list":
        budget = load_budget(args.budget, folder)
        rows = []
        for name in _names(["all"], folder):
            s = load_study(name, budget, folder)
            rows.append(
                {"claim": name, "title": s.title, "arms": {a.name: a.params for a in s.arms}}
            )
        if args.json:
            print(json.dumps({"budget": args.budget, "studies": rows}))
        else:
            for r in rows:
                arms = ", ".join(f"{k} {v:,}" for k, v in r["arms"].items())
                print(f"{r['claim']:8s} {r['title']}  [{arms}]")
        return 0
    if args.action == "run":
        from contrast_sr.study.runner import run_study

        budget = load_budget(args.budget, folder)
        studies = [load_study(n, budget, folder) for n in _names(args.claims, folder)]
        out = Path(args.output)
        for study in studies:
            run_study(study, budget, out, remeasure=args.remeasure)
        print(
            f"studied {', '.join(s.name for s in studies)} in {out}; "
            f"report: contrast-sr study report {out}"
        )
        return 0
    from contrast_sr.study.report import write_report

    target = write_report(Path(args.folder), Path(args.output) if args.output else None, folder)
    print(f"wrote {target}")
    return 0
