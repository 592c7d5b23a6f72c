"""In-domain evaluation of a model on a dataset split, as PROTOCOL.md defines it.

For each test sound the model infers parameters from the stored log-mel; the target is re-rendered
from the true parameters and the estimate from the inferred ones, with the dataset's synth, render
conditions and seed. Every audio metric of :func:`flowsynth.features.audio_metrics` (SC, LSD,
MFCC-L1, MR-STFT, mel-SC, mel-MSE) is computed between target and estimate, plus the parameter
MAE and MSE, each with its mean and 95% confidence interval. As a check that the re-rendered
targets are the dataset's sounds, ``feature_check_max_abs`` is the largest difference between the
stored log-mel and the target's.

``per_param`` says which parameters the model hears: for each learned parameter its MSE and MAE (normalized
units) and ``r2 = 1 - mse / chance_mse``, where ``chance_mse`` is the variance of the true values over the
evaluated sounds (what always guessing their mean would score): 1 for a parameter inferred exactly, 0 or
less for one the model cannot tell from the sound.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from flowsynth.data import DatasetFile
from flowsynth.errors import RenderError
from flowsynth.features.logmel import log_mel
from flowsynth.features.metrics import AUDIO_METRICS, audio_metrics, mean_ci, param_mae, param_mse
from flowsynth.models import ParamModel

__all__ = ["METRICS", "evaluate_model", "per_param_errors"]

#: Names of the reported metrics, in order.
METRICS = (*AUDIO_METRICS, "param_mae", "param_mse")


def _summary(values: Tensor) -> dict[str, float]:
    mean, low, high = mean_ci(values)
    return {"mean": mean, "ci95_low": low, "ci95_high": high, "median": float(values.median())}


def _render(synth, params: Tensor, config, seed: int) -> Tensor:
    with torch.no_grad():
        return synth.render_with(params.clamp(0.0, 1.0), config, seed=seed, on_error="nan")


def evaluate_model(
    model: ParamModel,
    dataset: DatasetFile,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluates ``model`` on a split of ``dataset``; returns a JSON-ready report.

    Arguments:
        model: A trained model (raw log-mel in, parameters out).
        dataset: The dataset whose split to evaluate on; its synth re-renders the sounds.
        split: ``"test"`` (default), ``"valid"`` or ``"train"``.
        limit: Evaluate only the first ``limit`` sounds of the split (in dataset order).
        batch_size: Sounds rendered and compared at once.
        progress: Show a progress bar.

    Raises:
        ValueError: the model and dataset disagree on the number of parameters, or the split is empty.
    """
    from flowsynth.synth import RenderConfig, from_description

    features, params = dataset.load(split)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        features, params = features[:limit], params[:limit]
    if len(params) == 0:
        raise ValueError(f"{dataset.path} has no sounds in its {split!r} split")
    if params.shape[1] != model.num_params:
        raise ValueError(
            f"the model infers {model.num_params} parameters, the dataset's synth learns {params.shape[1]}"
        )
    synth = from_description(dataset.synth_description)
    config = RenderConfig(**dataset.render_config)
    seed = int(dataset.attrs["seed"])
    start = time.perf_counter()
    per_item: dict[str, list[Tensor]] = {name: [] for name in METRICS}
    failed, feature_error = 0, 0.0
    truths, estimates = [], []
    for first in tqdm(range(0, len(params), batch_size), desc=f"evaluating on {split}", disable=not progress):
        batch = slice(first, first + batch_size)
        truth = params[batch]
        estimate = model.infer(features[batch]).cpu()
        target, rendered = _render(synth, truth, config, seed), _render(synth, estimate, config, seed)
        feature_error = max(feature_error, float((log_mel(target, config.sample_rate) - features[batch]).abs().max()))
        ok = torch.isfinite(rendered).all(dim=1) & torch.isfinite(target).all(dim=1)
        failed += int((~ok).sum())
        truths.append(truth[ok].double())
        estimates.append(estimate[ok].double())
        if not ok.any():
            continue
        values = audio_metrics(target[ok], rendered[ok], config.sample_rate)
        values |= {"param_mae": param_mae(truth[ok], estimate[ok]), "param_mse": param_mse(truth[ok], estimate[ok])}
        for name in METRICS:
            per_item[name].append(values[name].detach().double())
    if failed == len(params):
        raise RenderError(f"{synth.name} failed to render every sound of the {split} split")
    metrics = {name: _summary(torch.cat(per_item[name])) for name in METRICS}
    return {
        "test_set": {"data": str(dataset.path), "split": split, "sounds": len(params) - failed, "limit": limit},
        "synth": synth.name,
        "synth_description": dataset.synth_description,
        "num_params": model.num_params,
        "seed": seed,
        "render": config.describe(),
        "model": {"name": model.name, **_model_facts(model)},
        "failed_renders": failed,
        "feature_check_max_abs": feature_error,
        "metrics": metrics,
        "per_param": per_param_errors([p.name for p in synth.learned_params], torch.cat(truths), torch.cat(estimates)),
        "eval_time_s": time.perf_counter() - start,
    }


def per_param_errors(names: list[str], truth: Tensor, estimate: Tensor) -> dict[str, dict[str, float | None]]:
    """MSE, MAE, chance MSE (the variance of ``truth``) and ``r2`` per parameter of ``[n, d]`` estimates.

    ``r2`` is None where the true values do not vary (no guess can be told from the mean).

    >>> errors = per_param_errors(["a", "b"], torch.tensor([[0.0, 0.5], [1.0, 0.5]]), torch.tensor([[0.0, 0.4], [1.0, 0.6]]))
    >>> errors["a"]["r2"], errors["b"]["r2"]
    (1.0, None)
    """
    if truth.shape != estimate.shape or truth.shape[1] != len(names):
        raise ValueError(f"{len(names)} names for truth {list(truth.shape)} and estimate {list(estimate.shape)}")
    error = estimate.double() - truth.double()
    mse, mae = error.square().mean(0), error.abs().mean(0)
    chance = truth.double().var(0, correction=0)
    report: dict[str, dict[str, float | None]] = {}
    for i, name in enumerate(names):
        r2 = None if chance[i] < 1e-12 else round(1.0 - float(mse[i] / chance[i]), 4)
        report[name] = {"mse": round(float(mse[i]), 6), "mae": round(float(mae[i]), 6),
                        "chance_mse": round(float(chance[i]), 6), "r2": r2}  # fmt: skip
    return report


def _model_facts(model: ParamModel) -> dict[str, Any]:
    meta = getattr(model, "meta", {})
    training = meta.get("training", {})
    return {
        "path": meta.get("path"),
        "training_seed": training.get("seed"),
        "trained_on": training.get("data"),
        "epochs": training.get("epochs_run", training.get("epochs_trained")),
        "train_time_s": training.get("total_train_time_s", training.get("train_time_s")),
    }
