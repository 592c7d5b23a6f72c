"""The FlowSynth paper's table on our data: every model trained with the same budget, evaluated on the same test split.

For each dataset (e.g. ``data/b16.h5`` and ``data/b32.h5``) and each model, trains with ``flowsynth.training.train``
into ``RUNS/<dataset>/<model>`` (resumable: rerun the same command after an interruption, finished runs are
skipped), evaluates ``model.pt`` on the test split (PROTOCOL.md metrics with 95% CIs), and writes
``model_table.md``, ``model_table.json``, ``model_table.png`` (SC and MFCC-L1 per model) and
``model_table_params.png`` (each model's R² per parameter: which parameters it hears) to ``--out``.
The table checks the issue's goal in the same run: ``flow_reg``'s SC and MFCC-L1 over the best of the
regression baselines (``mlp``, ``cnn``, ``resnet``), to be at most 0.6.

Example (small smoke run)::

    python bench/model_table.py --data tmp/d.h5 --epochs 2 --limit 8 --out tmp/table --runs tmp/table/runs
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from flowsynth.cli.models import add_train_options, train_config
from flowsynth.data import DatasetFile
from flowsynth.models import available_models, load_model
from flowsynth.plots import save_figure
from flowsynth.training import evaluate_model, train

#: Columns of the table: metric name -> header.
COLUMNS = {
    "sc": "SC",
    "lsd": "LSD (dB)",
    "mfcc_l1": "MFCC-L1",
    "mr_stft": "MR-STFT",
    "mel_sc": "mel-SC",
    "param_mse": "param MSE",
}
BASELINES = ("mlp", "cnn", "resnet")
#: A parameter counts as heard when its R² (flowsynth.training.per_param_errors) reaches this.
HEARD_R2 = 0.5
GOAL_RATIO = 0.6
#: The paper's spectral convergence (Esling et al. 2019, table 1), for the ordering comparison.
PAPER_SC = {16: {"cnn": 1.372, "flow_reg": 0.752}, 32: {"cnn": 19.18, "flow_reg": 0.911}}


def run_one(data: Path, model: str, runs: Path, args: argparse.Namespace) -> dict:
    """Trains (or resumes) one model and evaluates it; cached in ``RUN/eval.json``."""
    out = runs / data.stem / model
    summary = train(train_config(args, data, model, out, progress=args.progress))
    report_path = out / "eval.json"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        if report["test_set"]["limit"] == args.limit and report.get("train_time_s") == summary["train_time_s"]:
            return report
    report = evaluate_model(load_model(out / "model.pt"), DatasetFile(data), "test", args.limit, progress=args.progress)
    report |= {"train_time_s": summary["train_time_s"], "epochs": summary["epochs"], "stopped": summary["stopped"]}
    report["samples_per_s"] = summary["samples_per_s"]
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def cell(metric: dict) -> str:
    half = (metric["ci95_high"] - metric["ci95_low"]) / 2
    return f"{metric['mean']:.3f} ± {half:.3f}"


def goal(reports: dict[str, dict]) -> dict | None:
    """flow_reg's SC and MFCC-L1 over the best regression baseline's, from the same run."""
    if "flow_reg" not in reports or not any(b in reports for b in BASELINES):
        return None
    out = {}
    for metric in ("sc", "mfcc_l1"):
        best = min(reports[b]["metrics"][metric]["mean"] for b in BASELINES if b in reports)
        ratio = reports["flow_reg"]["metrics"][metric]["mean"] / best
        out[metric] = {"best_baseline": best, "ratio": ratio, "met": ratio <= GOAL_RATIO}
    return out


def heard(report: dict) -> str:
    """How many parameters the model infers with R² >= HEARD_R2 ("-" for a report without per_param)."""
    per_param = report.get("per_param")
    if not per_param:
        return "-"
    return str(sum(v["r2"] is not None and v["r2"] >= HEARD_R2 for v in per_param.values()))


def markdown(tables: dict[str, dict[str, dict]]) -> str:
    lines = ["# Model table", ""]
    for name, reports in tables.items():
        first = next(iter(reports.values()))
        test = first["test_set"]
        lines += [
            f"## {name}: synth {first['synth']}, {first['num_params']} parameters, test split of {test['data']} "
            f"({test['sounds']} sounds), dataset seed {first['seed']}",
            "",
            "| model | "
            + " | ".join(COLUMNS.values())
            + f" | heard (R² >= {HEARD_R2}) | epochs | train time (min) | sounds/s |",
            "|---" * (len(COLUMNS) + 5) + "|",
        ]
        for model, report in reports.items():
            cells = [cell(report["metrics"][key]) for key in COLUMNS]
            speed = f"{report['samples_per_s']:.0f}" if report.get("samples_per_s") else "-"
            extra = [heard(report), str(report["epochs"]), f"{report['train_time_s'] / 60:.1f}", speed]
            lines.append(f"| {model} | " + " | ".join(cells + extra) + " |")
        check = goal(reports)
        if check:
            parts = [
                f"{k}: {v['ratio']:.2f} x best baseline ({'met' if v['met'] else 'not met'})" for k, v in check.items()
            ]
            lines += ["", f"Goal (flow_reg <= {GOAL_RATIO} x best of mlp/cnn/resnet): " + "; ".join(parts)]
        paper = PAPER_SC.get(first["num_params"])
        if paper:
            lines += [
                "",
                f"Paper's SC at {first['num_params']} parameters: " + ", ".join(f"{k} {v}" for k, v in paper.items()),
            ]
        lines.append("")
    return "\n".join(lines)


def figure(tables: dict[str, dict[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tables), 2, figsize=(12, 3.5 * len(tables)), squeeze=False)
    for row, (name, reports) in enumerate(tables.items()):
        for col, metric in enumerate(("sc", "mfcc_l1")):
            ax = axes[row][col]
            models = list(reports)
            means = [reports[m]["metrics"][metric]["mean"] for m in models]
            errors = [
                (reports[m]["metrics"][metric]["ci95_high"] - reports[m]["metrics"][metric]["ci95_low"]) / 2
                for m in models
            ]
            colors = ["tab:orange" if m.startswith("flow") else "tab:blue" for m in models]
            ax.bar(models, means, yerr=errors, color=colors, capsize=3)
            ax.set_title(f"{name}: {COLUMNS[metric]} (lower is better, 95% CI)")
            ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    save_figure(fig, path)


def param_figure(tables: dict[str, dict[str, dict]], path: Path) -> bool:
    """A heat map per dataset of each model's R² per parameter (parameters by their best R²); False if no
    report has ``per_param``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tables = {name: {m: r for m, r in reports.items() if r.get("per_param")} for name, reports in tables.items()}
    tables = {name: reports for name, reports in tables.items() if reports}
    if not tables:
        return False
    fig, axes = plt.subplots(len(tables), 1, figsize=(13, 1.2 + 0.45 * max(map(len, tables.values())) * len(tables)))
    for ax, (name, reports) in zip(np.atleast_1d(axes), tables.items(), strict=True):
        models = list(reports)
        params = list(next(iter(reports.values()))["per_param"])
        r2 = np.array([[reports[m]["per_param"][p]["r2"] or 0.0 for p in params] for m in models])
        order = np.argsort(-r2.max(axis=0))
        image = ax.imshow(r2[:, order], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(models)), models, fontsize=8)
        ax.set_xticks(range(len(params)), [params[i] for i in order], rotation=90, fontsize=7)
        ax.set_title(f"{name}: R² of each inferred parameter (1: exact, 0: no better than the mean)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.02)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="dataset files")
    parser.add_argument("--models", nargs="+", default=available_models(), choices=available_models())
    add_train_options(parser)  # the options of `flowsynth train`, applied to every model
    parser.set_defaults(threads=1)
    parser.add_argument("--limit", type=int, help="evaluate the first N test sounds only")
    parser.add_argument("--runs", type=Path, default=Path("runs/table"), help="folder of the training runs")
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tables: dict[str, dict[str, dict]] = {}
    for data in args.data:
        tables[data.stem] = {}
        for model in args.models:
            report = run_one(data, model, args.runs, args)
            tables[data.stem][model] = report
            print(
                f"{data.stem} {model}: SC {cell(report['metrics']['sc'])}, MFCC-L1 {cell(report['metrics']['mfcc_l1'])}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    budget = {"epochs": args.epochs, "minutes": args.minutes, "batch_size": args.batch_size, "seed": args.seed}
    summary = {
        "budget": budget,
        "threads": args.threads,
        "machine": platform.platform(),
        "goal": {name: goal(reports) for name, reports in tables.items()},
        "tables": tables,
    }
    (args.out / "model_table.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "model_table.md").write_text(markdown(tables))
    figure(tables, args.out / "model_table.png")
    param_figure(tables, args.out / "model_table_params.png")
    print(markdown(tables))


if __name__ == "__main__":
    main()
