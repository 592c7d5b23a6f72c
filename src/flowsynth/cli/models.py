"""``flowsynth train`` and ``flowsynth evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowsynth.training import TrainConfig

__all__ = ["register", "add_train_options", "train_config"]

_MODELS = ("mlp", "cnn", "resnet", "ae", "vae", "wae", "vae_flow", "flow_reg", "flow_dis")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the model commands."""
    train = subparsers.add_parser(
        "train",
        help="train a model on a dataset (resumable; data-parallel under torchrun)",
        description="Train a model. Rerun the same command to resume an interrupted run. "
        "Data-parallel: torchrun --nproc_per_node N -m flowsynth.cli.main train ...",
    )
    train.add_argument("--data", type=Path, required=True, help="dataset file (flowsynth render-dataset)")
    train.add_argument("--model", required=True, choices=_MODELS, help="model name")
    train.add_argument("--out", type=Path, required=True, help="run folder (config, metrics, checkpoints)")
    add_train_options(train)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("evaluate", help="evaluate a trained model on a dataset split (PROTOCOL.md)")
    evaluate.add_argument("--model", type=Path, required=True, help="model checkpoint (model.pt)")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset file")
    evaluate.add_argument("--split", default="test", choices=("test", "valid", "train"))
    evaluate.add_argument("--json", type=Path, help="write the report to this JSON file")
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N sounds of the split")
    evaluate.add_argument("--batch-size", type=int, default=16, help="sounds rendered at once")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.add_argument("--per-param", action="store_true", help="print each parameter's error and R², best first")
    evaluate.add_argument("--plot", type=Path, help="write a PNG of each parameter's R² (what the model hears)")
    evaluate.set_defaults(func=run_evaluate)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Adds the options of a training run that :func:`train_config` reads: budget, optimizer, losses, tags."""
    parser.add_argument("--epochs", type=int, default=100, help="maximum number of epochs")
    parser.add_argument("--minutes", type=float, help="wall-time budget of the whole run, in minutes")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization, shuffling and sampling")
    parser.add_argument("--model-args", type=json.loads, default={}, help="JSON constructor arguments of the model")
    parser.add_argument("--beta", type=float, default=1.0, help="final weight of the KL / MMD term")
    parser.add_argument("--kl-warmup", type=float, default=10.0, help="epochs of KL warm-up")
    parser.add_argument("--reg-warmup", type=float, default=5.0, help="epochs of regression warm-up")
    parser.add_argument("--patience", type=int, default=15, help="early-stopping patience, in epochs")
    parser.add_argument("--schedule", choices=("plateau", "cosine"), default="plateau", help="learning-rate schedule")
    parser.add_argument("--tag-pairs", default="dark:bright,tonal:noisy", help="flow_dis tag pairs, LOW:HIGH,...")
    parser.add_argument("--tag-fraction", type=float, default=0.1, help="share of tagged training sounds (flow_dis)")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")


def train_config(args: argparse.Namespace, data: Path, model: str, out: Path, progress: bool) -> TrainConfig:
    """The training run of ``model`` on ``data`` into ``out``, with the options of :func:`add_train_options`."""
    from flowsynth.training import TrainConfig

    if not isinstance(args.model_args, dict):
        raise ValueError("--model-args must be a JSON object, e.g. '{\"hidden\": 128}'")
    return TrainConfig(
        data=str(data),
        model=model,
        out=str(out),
        epochs=args.epochs,
        minutes=args.minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        model_args=args.model_args,
        beta=args.beta,
        kl_warmup=args.kl_warmup,
        reg_warmup=args.reg_warmup,
        patience=args.patience,
        schedule=args.schedule,
        tag_pairs=_pairs(args.tag_pairs),
        tag_fraction=args.tag_fraction,
        progress=progress,
        threads=args.threads,
    )


def _pairs(text: str) -> list[list[str]]:
    pairs = [item.split(":") for item in text.split(",") if item.strip()]
    if not pairs or any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise ValueError(f"--tag-pairs must look like LOW:HIGH,LOW:HIGH (e.g. dark:bright), got {text!r}")
    return [[low.strip(), high.strip()] for low, high in pairs]


def run_train(args: argparse.Namespace) -> int:
    from flowsynth.training import train

    config = train_config(args, args.data, args.model, args.out, progress=not args.quiet)
    summary = train(config)
    if not args.quiet and summary.get("samples_per_s") is not None:
        print(
            f"{args.out}: {summary['epochs']} epochs ({summary['stopped']}), best valid param MSE "
            f"{summary['valid_param_mse']:.4f} at epoch {summary['best_epoch']}, {summary['train_time_s']:.0f} s, "
            f"{summary['samples_per_s']:.0f} sounds/s; model: {args.out / 'model.pt'}"
        )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from flowsynth.data import DatasetFile
    from flowsynth.models import load_model
    from flowsynth.training import evaluate_model

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    model = load_model(args.model)
    report = evaluate_model(model, DatasetFile(args.data), args.split, args.limit, args.batch_size, not args.quiet)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(_format(report))
    if args.per_param:
        print(_format_params(report["per_param"]))
    if args.plot:
        from flowsynth.plots import save_param_errors

        test = report["test_set"]
        title = f"{report['model']['name']} on {test['data']} ({test['split']}, {test['sounds']} sounds)"
        print(f"{save_param_errors(args.plot, report['per_param'], title)}: R² per parameter")
    return 0


def _format_params(per_param: dict) -> str:
    lines = [f"{'parameter':<20} {'R²':>7} {'MSE':>8} {'chance':>8}"]
    order = sorted(per_param, key=lambda name: 999.0 if per_param[name]["r2"] is None else -per_param[name]["r2"])
    for name in order:
        v = per_param[name]
        r2 = "-" if v["r2"] is None else f"{v['r2']:.3f}"
        lines.append(f"{name:<20} {r2:>7} {v['mse']:>8.4f} {v['chance_mse']:>8.4f}")
    return "\n".join(lines)


def _format(report: dict) -> str:
    test = report["test_set"]
    lines = [
        f"{report['model']['name']} on {test['data']} ({test['split']}, {test['sounds']} sounds), synth "
        f"{report['synth']}, {report['num_params']} parameters, dataset seed {report['seed']}",
        f"{'metric':<10} {'mean':>10} {'95% CI':>23}",
    ]
    for name, value in report["metrics"].items():
        ci = f"[{value['ci95_low']:.4g}, {value['ci95_high']:.4g}]"
        lines.append(f"{name:<10} {value['mean']:>10.4g} {ci:>23}")
    return "\n".join(lines)
