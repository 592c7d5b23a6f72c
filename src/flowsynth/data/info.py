"""Summaries of a dataset file: counts, parameter ranges, descriptor statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowsynth.data.store import SPLITS, DatasetFile

__all__ = ["dataset_info", "format_info"]


def dataset_info(path: Path) -> dict:
    """Counts per split and status, parameter ranges in units, descriptor percentiles."""
    import torch

    from flowsynth.synth import from_description

    dataset = DatasetFile(path)
    synth = from_description(dataset.synth_description)
    params = dataset.read("params", "all")
    units = synth.space.to_units(torch.from_numpy(params)) if len(params) else {}
    ranges = {
        p.name: {"units": p.units, "min": float(np.min(units[p.name])), "max": float(np.max(units[p.name]))}
        for p in synth.learned_params
        if units
    }
    stats = {}
    for name in dataset.descriptor_names():
        values = dataset.read(f"descriptors/{name}", "all")
        p10, p50, p90 = np.percentile(values, [10, 50, 90]) if len(values) else (np.nan,) * 3
        stats[name] = {"p10": float(p10), "median": float(p50), "p90": float(p90)}
    names = [n for n in dataset.strings("preset_names", "all") if n]
    return {
        "path": str(path),
        "synth": synth.name,
        "learned": len(synth.space.learned),
        "render": dataset.render_config,
        "counts": dataset.counts,
        "splits": {split: len(dataset.indices(split)) for split in SPLITS},
        "presets": len(set(names)),
        "params": ranges,
        "descriptors": stats,
    }


def format_info(info: dict) -> str:
    """Human-readable text of :func:`dataset_info`."""
    counts, splits = info["counts"], info["splits"]
    lines = [
        f"{info['path']}: synth {info['synth']}, {info['learned']} learned parameters",
        f"render: {info['render']}",
        f"sounds: {counts['kept']} kept ({', '.join(f'{k} {v}' for k, v in splits.items())}), "
        f"{counts['silent']} silent, {counts['broken']} broken",
        f"presets: {info['presets']} distinct names",
        "parameters (range seen, in units):",
    ]
    lines += [f"  {n:<20} {r['min']:>10.4g} .. {r['max']:<10.4g} {r['units']}" for n, r in info["params"].items()]
    lines.append("descriptors (10th percentile / median / 90th percentile):")
    lines += [
        f"  {n:<22} {s['p10']:>10.4g} {s['median']:>10.4g} {s['p90']:>10.4g}" for n, s in info["descriptors"].items()
    ]
    return "\n".join(lines)
