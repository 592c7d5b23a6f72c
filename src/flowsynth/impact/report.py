"""Human-facing outputs of the impact instrument: descriptor tables, plots and the listening page."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flowsynth.impact._io import atomic_path, publish
from flowsynth.impact.descriptors import DESCRIPTORS, DescriptorConfig
from flowsynth.plots import save_figure

__all__ = ["curves_table", "curves_to_json", "listening_page", "plot_curves"]


def curves_table(curves: np.ndarray) -> str:
    """A text table of each descriptor's unit, mean, minimum and maximum over the frames.

    >>> print(curves_table(np.ones((7, 3))).splitlines()[0].split())
    ['descriptor', 'unit', 'mean', 'min', 'max']
    """
    _check(curves)
    lines = [f"{'descriptor':<14} {'unit':<10} {'mean':>10} {'min':>10} {'max':>10}"]
    for d, row in zip(DESCRIPTORS, curves, strict=True):
        lines.append(f"{d.name:<14} {d.unit:<10} {row.mean():>10.3f} {row.min():>10.3f} {row.max():>10.3f}")
    return "\n".join(lines)


def curves_to_json(curves: np.ndarray, config: DescriptorConfig) -> dict:
    """A JSON-ready dict: frame times, one list per descriptor, units and the analysis settings."""
    _check(curves)
    times = np.arange(curves.shape[1]) / config.frame_rate_hz
    return {
        "config": config.to_dict(),
        "time_s": [round(float(t), 5) for t in times],
        "units": {d.name: d.unit for d in DESCRIPTORS},
        "curves": {d.name: [round(float(v), 5) for v in row] for d, row in zip(DESCRIPTORS, curves, strict=True)},
    }


def plot_curves(curves: np.ndarray, config: DescriptorConfig, path: str | Path, title: str = "") -> Path:
    """Plots the seven curves one above the other into a PNG file (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _check(curves)
    times = np.arange(curves.shape[1]) / config.frame_rate_hz
    figure, axes = plt.subplots(len(DESCRIPTORS), 1, figsize=(7, 10), sharex=True)
    for axis, d, row in zip(axes, DESCRIPTORS, curves, strict=True):
        axis.plot(times, row, linewidth=1.2)
        axis.set_ylabel(f"{d.name}\n({d.unit})", fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    figure.suptitle(title or "impact descriptors")
    figure.tight_layout()
    return save_figure(figure, path, dpi=90)


def listening_page(path: str | Path, title: str, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> Path:
    """Writes an HTML page of audio players.

    Args:
        path: The HTML file to write; audio paths are written relative to its folder.
        title: Page title.
        sections: ``(heading, [(caption, audio_path), ...])`` pairs.
    """
    path = Path(path)
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><table>")
        for caption, audio in items:
            relative = os.path.relpath(audio, path.parent)
            parts.append(
                f"<tr><td>{html.escape(caption)}</td>"
                f"<td><audio controls preload='none' src='{html.escape(relative)}'></audio></td></tr>"
            )
        parts.append("</table>")
    temporary, final = atomic_path(path)
    temporary.write_text("\n".join(parts) + "\n", encoding="utf-8")
    publish(temporary, final)
    return final


def _check(curves: np.ndarray) -> None:
    if curves.ndim != 2 or curves.shape[0] != len(DESCRIPTORS):
        raise ValueError(f"descriptor curves must have shape [{len(DESCRIPTORS)}, frames], got {curves.shape}")
