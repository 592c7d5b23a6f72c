"""Measures a model's controls on a dataset's held-out presets, as ``PROTOCOL.md`` asks.

* Semantic knobs: fitted on the training split (measured knobs; steered and guided knobs, whose
  descriptor surrogate learns from the whole training split; validated knobs, one of the three per
  pair, chosen around training presets) or the model's own (``flow_dis``), then swept around
  ``anchors`` test presets: Spearman rho with the pair's descriptor and leakage.
* Interpolation: ``pairs`` seeded pairs of test presets, the straight latent path against the naive one,
  smoothness per descriptor normalized with the training split's descriptor scale; and the same
  between the sounds the model hears in those test sounds (the parameters of their posterior-mean
  latents: points the model reaches exactly, as when two sounds are dropped), ``interpolation_encoded``;
  both again with the geodesic latent path (``interpolation_geodesic``, ``interpolation_encoded_geodesic``).
* Macros: the ranked knobs, measured around training presets.

Run ``python -m flowsynth.control.evaluate --model M --data D --out report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from flowsynth.control.descriptors import DescriptorScale
from flowsynth.control.interpolate import PATH_METHODS, compare_paths
from flowsynth.control.macros import AnalysisConfig, analyze_macros
from flowsynth.control.map import PresetBank
from flowsynth.control.semantic import (
    SEMANTIC_SOURCES,
    SURROGATE_SOURCES,
    evaluate_semantic,
    fit_semantic_knobs,
    resolve_source,
)
from flowsynth.control.space import SoundSpace
from flowsynth.control.surrogate import fit_dataset_surrogate
from flowsynth.features import mean_ci

__all__ = ["evaluate_controls", "main"]


def _ci(values: list[float]) -> dict[str, float]:
    mean, low, high = mean_ci([v for v in values if v == v])
    return {"mean": round(mean, 4), "ci95_low": round(low, 4), "ci95_high": round(high, 4)}


def evaluate_controls(
    space: SoundSpace,
    data: str | os.PathLike[str],
    anchors: int = 30,
    pairs: int = 30,
    steps: int = 9,
    analysis: AnalysisConfig | None = None,
    seed: int = 0,
    semantic_source: str = "auto",
) -> dict[str, Any]:
    """The report (see the module docstring); every random choice follows ``seed``."""
    train = PresetBank.from_dataset(data, "train", limit=2000, seed=seed)
    test = PresetBank.from_dataset(data, "test", seed=seed)
    if not train.descriptors or not test.descriptors:
        raise ValueError(f"{data} stores no descriptors; render it again with a current flowsynth")
    scale = DescriptorScale.fit(train.descriptors)
    reference = space.to_latent(train.params)
    projected_train = space.projected
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    begin = time.perf_counter()
    source = resolve_source(space, semantic_source, steerable=True)
    surrogate = fit_dataset_surrogate(data, seed=seed) if source in SURROGATE_SOURCES else None
    knobs = fit_semantic_knobs(space, reference, train.descriptors, semantic_source, surrogate, seed=seed)
    semantic = evaluate_semantic(knobs, space.to_latent(test.params[order[:anchors]]), steps, scale)
    encoded_params = _encoded(space, data, order[: 2 * pairs])
    interpolations = {}
    for method in PATH_METHODS:
        suffix = "" if method == "straight" else f"_{method}"
        interpolations[f"interpolation{suffix}"] = _interpolations(
            space, test.params, order, pairs, steps, scale, method
        )
        interpolations[f"interpolation_encoded{suffix}"] = _interpolations(
            space, encoded_params, torch.arange(2 * pairs), pairs, steps, scale, method
        )
    macros = analyze_macros(space, reference, analysis or AnalysisConfig(seed=seed), scale)
    return {
        "test_set": {"data": str(data), "split": "test", "presets": len(test), "anchors": anchors, "pairs": pairs},
        "model": space.model.name,
        "synth": space.synth.name,
        "num_params": space.num_params,
        "seed": seed,
        "semantic_source": source,
        "semantic": semantic,
        "semantic_selection": knobs.selection,
        **interpolations,
        "macros": [
            {"knob": i, "dim": m.dim, "name": m.name, "label": m.label, "sound_score": round(m.sound_score, 4)}
            for i, m in enumerate(macros.macros[: macros.visible])
        ],
        "projected": {"train": projected_train, "test_and_paths": space.projected - projected_train},
        "time_s": round(time.perf_counter() - begin, 1),
    }


def _encoded(space: SoundSpace, data: str | os.PathLike[str], rows: torch.Tensor) -> torch.Tensor:
    """What the model hears in the chosen test sounds: the parameters of their posterior-mean latents."""
    from flowsynth.data import DatasetFile

    features = torch.from_numpy(DatasetFile(Path(data)).read("features", "test"))[rows]
    return space.to_params(space.model.latent_mean(features))


def _interpolations(
    space: SoundSpace,
    params: torch.Tensor,
    order: torch.Tensor,
    pairs: int,
    steps: int,
    scale: DescriptorScale,
    method: str,
) -> dict[str, Any]:
    reports = []
    for k in range(pairs):
        a, b = order[(2 * k) % len(order)], order[(2 * k + 1) % len(order)]
        reports.append(compare_paths(space, params[a], params[b], steps, scale, method=method))
    names = reports[0]["descriptors"]
    per_descriptor = {
        name: {
            "latent": _ci([r["latent"][name] for r in reports]),
            "linear": _ci([r["linear"][name] for r in reports]),
            "latent_smoother_in": sum(r["latent"][name] < r["linear"][name] for r in reports),
        }
        for name in names
    }
    return {
        "method": method,
        "steps": steps,
        "pairs": len(reports),
        "per_descriptor": per_descriptor,
        "descriptors_smoother_on_average": sum(
            v["latent"]["mean"] < v["linear"]["mean"] for v in per_descriptor.values()
        ),
        "pairs_smoother_on_most_descriptors": sum(r["smoother_on"] > len(names) / 2 for r in reports),
        "endpoint_error": _ci([r["endpoint_error"] for r in reports]),
        "latent_mean": _ci([r["latent_mean"] for r in reports]),
        "linear_mean": _ci([r["linear_mean"] for r in reports]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure a model's controls on a dataset's held-out presets.")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON report")
    parser.add_argument("--anchors", type=int, default=30, help="held-out presets the semantic knobs are swept around")
    parser.add_argument("--pairs", type=int, default=30, help="pairs of held-out presets interpolated")
    parser.add_argument("--macro-anchors", type=int, default=6, help="sounds each latent dimension is swept around")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--semantic-knobs",
        choices=SEMANTIC_SOURCES,
        default="auto",
        help="a flow_dis model's own knobs, else validated ones (auto), or measured, steered, guided or validated ones",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    space = SoundSpace.from_checkpoint(args.model, seed=args.seed)
    analysis = AnalysisConfig(anchors=args.macro_anchors, seed=args.seed)
    report = evaluate_controls(
        space,
        args.data,
        args.anchors,
        args.pairs,
        analysis=analysis,
        seed=args.seed,
        semantic_source=args.semantic_knobs,
    )
    report["checkpoint"] = str(args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for row in report["semantic"]:
        rho, leak = row["rho"], row["leakage"]
        print(
            f"{row['name']:<24} {row['kind']:<9} rho {rho['mean']:+.3f} [{rho['ci95_low']:+.3f}, {rho['ci95_high']:+.3f}]  leakage {leak['mean']:.3f}"
        )
    for key in report:
        if key.startswith("interpolation"):
            _print_paths(key, report[key], report["projected"])


def _print_paths(key: str, inter: dict[str, Any], projected: dict[str, int]) -> None:
    print(
        f"{key}: latent smoother on {inter['descriptors_smoother_on_average']}/8 descriptors on average; "
        f"{inter['pairs_smoother_on_most_descriptors']}/{inter['pairs']} pairs smoother on most descriptors; "
        f"mean RMS d2 latent {inter['latent_mean']['mean']:.3f} vs linear {inter['linear_mean']['mean']:.3f}; "
        f"endpoint error {inter['endpoint_error']['mean']:.3f}; presets searched (not inverted): {projected}"
    )


if __name__ == "__main__":
    main()
