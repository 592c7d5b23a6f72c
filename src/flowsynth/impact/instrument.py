"""The generator wired to the engine's gates and CVs: what gate 1 and gate 2 sound like for given CVs."""

from __future__ import annotations

import numpy as np

from flowsynth.impact.generate import Generator, edit_curves, generate, merge_curves

__all__ = ["ImpactInstrument", "cv_to_control"]


def cv_to_control(cv: float) -> float:
    """A CV in [0, 1] as an edit control in [-1, 1] (0.5: unchanged).

    >>> cv_to_control(0.5), cv_to_control(1.0), cv_to_control(0.0)
    (0.0, 1.0, -1.0)
    """
    return float(np.clip(2.0 * cv - 1.0, -1.0, 1.0))


class ImpactInstrument:
    """Renders gate 1 (the first impact) and gate 2 (its merge with the second) for CV values.

    The CVs richness and noisiness edit both gates' curves; the CV degree is gate 2's merge degree.
    Output is resampled to ``output_rate`` and ends with a short fade, so voices never end in a click.

    Arguments:
        model: The generator (any object called like :class:`ImpactGenerator`, e.g. an ONNX wrapper).
        first: Curves [7, T] of the current impact.
        second: Curves [7, T] of the impact merged in by gate 2.
        output_rate: Sample rate of the rendered audio.
        seed: Noise seed of every render (same CVs, same sound).
    """

    def __init__(
        self,
        model: Generator,
        first: np.ndarray,
        second: np.ndarray,
        output_rate: int | None = None,
        seed: int = 0,
    ) -> None:
        self.model, self.first, self.second, self.seed = model, first, second, seed
        self.model_rate = int(model.sample_rate)
        self.output_rate = int(output_rate or self.model_rate)
        self.model_samples = (first.shape[1] - 1) * int(model.hop_length)
        self.num_samples = round(self.model_samples * self.output_rate / self.model_rate)
        fade = min(self.num_samples, round(0.02 * self.output_rate))
        self._fade = np.ones(self.num_samples, np.float32)
        self._fade[-fade:] = np.linspace(1.0, 0.0, fade)

    def curves(self, gate: int, cvs: tuple[float, float, float]) -> np.ndarray:
        """The curves gate 1 or 2 plays for ``cvs`` = (richness, noisiness, degree), each in [0, 1]."""
        richness, noisiness, degree = cvs
        base = self.first if gate == 1 else merge_curves(self.first, self.second, float(np.clip(degree, 0.0, 1.0)))
        return edit_curves(
            base, richness=cv_to_control(richness), noisiness=cv_to_control(noisiness), sample_rate=self.model_rate
        )

    def __call__(self, gate: int, cvs: tuple[float, float, float]) -> np.ndarray:
        audio = generate(self.model, self.curves(gate, cvs), self.model_samples, seed=self.seed)
        if self.output_rate != self.model_rate:
            from scipy.signal import resample_poly

            g = np.gcd(self.output_rate, self.model_rate)
            audio = resample_poly(audio, self.output_rate // g, self.model_rate // g).astype(np.float32)
        audio = np.pad(audio[: self.num_samples], (0, max(0, self.num_samples - len(audio))))
        return (audio * self._fade).astype(np.float32)
