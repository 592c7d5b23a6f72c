"""Figures people would rather look at than read: spectrograms side by side, what a model hears per parameter."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["save_figure", "save_param_errors", "save_spectrograms"]


def save_figure(figure: Any, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Writes a matplotlib figure as a PNG atomically (a temporary file in the same folder, then a
    rename), creating the folder, and closes the figure; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(handle)
        try:
            figure.savefig(name, format="png", dpi=dpi)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(name, 0o666 & ~umask)
            os.replace(name, path)
        finally:
            Path(name).unlink(missing_ok=True)
    finally:
        plt.close(figure)
    return path


def save_spectrograms(
    path: str | os.PathLike[str], sounds: dict[str, Tensor], sample_rate: int, title: str = "", columns: int = 4
) -> Path:
    """Writes a PNG with the log-magnitude spectrogram of each sound, side by side.

    Arguments:
        path: Output PNG file (written atomically).
        sounds: Label -> mono audio ``[N]``.
        sample_rate: Sample rate of every sound.
        title: Figure title.
        columns: Plots per row.
    """
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not sounds:
        raise ValueError("no sound to plot")
    columns = min(len(sounds), columns)
    rows = -(-len(sounds) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False, sharey=True)
    for ax, (label, audio) in zip(axes.flat, sounds.items(), strict=False):
        spectrum = np.abs(librosa.stft(audio.detach().cpu().numpy().astype(np.float32), n_fft=1024, hop_length=256))
        db = librosa.amplitude_to_db(spectrum, ref=np.max(spectrum) if spectrum.max() > 0 else 1.0, top_db=90)
        seconds = len(audio) / sample_rate
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, sample_rate / 2000))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("frequency (kHz)")
    for ax in list(axes.flat)[len(sounds) :]:
        ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def save_param_errors(path: str | os.PathLike[str], per_param: dict[str, dict], title: str = "") -> Path:
    """Writes a PNG of each parameter's ``r2`` (an evaluation report's ``per_param``), best first.

    A bar near 1 is a parameter the model infers from the sound; near or below 0, one it cannot tell
    from always guessing the mean.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(((v["r2"], name) for name, v in per_param.items() if v.get("r2") is not None), reverse=True)
    if not rows:
        raise ValueError("no parameter varies over the evaluated sounds: nothing to plot")
    figure, ax = plt.subplots(figsize=(6, 0.9 + 0.22 * len(rows)))
    values = [max(r2, -0.2) for r2, _ in rows]
    ax.barh(range(len(rows)), values, color=["tab:blue" if r2 >= 0.5 else "tab:gray" for r2, _ in rows])
    ax.set_yticks(range(len(rows)), [name for _, name in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-0.2, 1.0)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("R² of the inferred parameter (1: exact, 0: no better than the mean)")
    ax.set_title(title or "what the model hears, per parameter", fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)
