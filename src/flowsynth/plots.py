"""Figures people would rather look at than read: spectrograms side by side."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch import Tensor

__all__ = ["save_spectrograms"]


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    tmp.replace(path)
    return path
