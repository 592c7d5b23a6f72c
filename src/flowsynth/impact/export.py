"""Export for small hardware: the generator's network as ONNX, its signal processing in NumPy.

The network (curves -> amplitude, harmonic mix, noise magnitudes) runs in onnxruntime; the harmonic bank,
the filtered noise (inverse STFT) and the learned impulse response are plain NumPy, written to match the
torch code sample for sample (the noise comes from the same NumPy generator, see
:func:`~flowsynth.impact.model.noise_frames`). The constructor kwargs and the impulse response travel in
the ONNX file's metadata, so the file alone is the model. :class:`OnnxGenerator` is called like
:class:`~flowsynth.impact.model.ImpactGenerator`, so the instrument and the engine run on it unchanged.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flowsynth.errors import CheckpointError
from flowsynth.impact._io import atomic_path, publish
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES
from flowsynth.impact.model import ImpactGenerator, noise_frames

__all__ = ["OnnxGenerator", "export_onnx", "onnx_size_bytes"]

_PITCH_ROW = DESCRIPTOR_NAMES.index("pitch")


class _Controls(nn.Module):
    def __init__(self, model: ImpactGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(self, curves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.controls(curves)


def export_onnx(model: ImpactGenerator, path: str | Path) -> Path:
    """Writes the generator as an ONNX file (opset 17, dynamic batch and frames), atomically."""
    import warnings

    import onnx

    model = model.eval()
    example = torch.tensor([[-30.0, 0.2, 0.5, 0.5, 1.0, 1500.0, 200.0]]).repeat(12, 1).T[None]
    temporary, final = atomic_path(Path(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Controls(model), (example,), str(temporary), dynamo=False, opset_version=17,
                input_names=["curves"], output_names=["amplitude", "harmonic_mix", "noise_magnitude"],
                dynamic_axes={name: {0: "batch", 2: "frames"} for name in
                              ("curves", "amplitude", "harmonic_mix", "noise_magnitude")},
            )  # fmt: skip
        graph = onnx.load(str(temporary))
        ir = model.ir.detach().numpy().astype("<f4") if model.ir is not None else np.zeros(0, "<f4")
        meta = {"flowsynth_kwargs": json.dumps(model.kwargs), "flowsynth_ir": base64.b64encode(ir.tobytes()).decode()}
        for key, value in meta.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(graph, str(temporary))
        publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final


class OnnxGenerator:
    """An exported generator: onnxruntime for the network, NumPy for the synthesis (see the module docstring).

    Arguments:
        path: ONNX file written by :func:`export_onnx`.
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path, self.threads = Path(path), threads
        self._open()

    def _open(self) -> None:
        import onnxruntime

        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX generator at {self.path}; write one with 'flowsynth impact export'")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = self.threads
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            self.kwargs = json.loads(meta["flowsynth_kwargs"])
            self.ir = np.frombuffer(base64.b64decode(meta["flowsynth_ir"]), dtype="<f4").astype(np.float32)
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise CheckpointError(f"{self.path} is not an exported impact generator ({error})") from error
        self.sample_rate, self.hop_length = int(self.kwargs["sample_rate"]), int(self.kwargs["hop_length"])
        self.noise_fft = int(self.kwargs["noise_fft"])
        overlap = int(self.kwargs.get("noise_overlap", 4))
        self.noise_hop = self.noise_fft // overlap
        self.harmonic_numbers = np.arange(1, int(self.kwargs["num_harmonics"]) + 1, dtype=np.float32)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.noise_fft) / self.noise_fft)
        self._window = (hann if overlap == 4 else np.sqrt(hann)).astype(np.float32)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.threads = Path(state["path"]), int(state["threads"])
        self._open()

    @property
    def num_parameters(self) -> int:
        """Number of stored weights (initializers) plus the impulse response."""
        import onnx

        graph = onnx.load(str(self.path)).graph
        return int(sum(np.prod(t.dims) for t in graph.initializer)) + len(self.ir)

    def __call__(self, curves: Any, num_samples: int | None = None, seed: int = 0) -> np.ndarray:
        """Audio [B, num_samples] (float32) from raw curves [B, 7, T] (NumPy array or torch tensor)."""
        curves = np.asarray(curves.numpy() if isinstance(curves, torch.Tensor) else curves, dtype=np.float32)
        num_samples = num_samples or (curves.shape[-1] - 1) * self.hop_length
        amplitude, mix, noise = self.session.run(None, {"curves": curves})
        audio = self._harmonic(amplitude * mix, curves[:, _PITCH_ROW], num_samples)
        audio = audio + self._noise(noise, num_samples, seed)
        return self._reverb(audio).astype(np.float32)

    def _harmonic(self, weights: np.ndarray, pitch_hz: np.ndarray, num_samples: int) -> np.ndarray:
        """Twin of :meth:`ImpactGenerator.harmonic` (weights linear between frames, two sums per hop)."""
        f0 = _upsample(pitch_hz[:, None], num_samples, self.hop_length)[:, 0]
        phase = np.cumsum(2.0 * math.pi * f0.astype(np.float32).astype(np.float64) / self.sample_rate, axis=1)
        phase = np.remainder(phase, 2.0 * math.pi).astype(np.float32)
        used = np.flatnonzero(np.abs(weights).max(axis=(0, 2)))
        if used.size == 0:
            return np.zeros_like(phase)
        count, hop, frames = int(used.max()) + 1, self.hop_length, weights.shape[-1]
        segments = -(-num_samples // hop)
        phase = np.pad(phase, ((0, 0), (0, segments * hop - num_samples))).reshape(-1, segments, 1, hop)
        sines = np.sin(self.harmonic_numbers[:count, None] * phase)  # [B, segments, K, hop]
        ends = weights[:, :count, np.minimum(np.arange(segments + 1), frames - 1)].transpose(0, 2, 1)
        sums = np.matmul(np.stack([ends[:, :-1], ends[:, 1:]], axis=2), sines)  # [B, segments, 2, hop]
        alpha = np.arange(hop, dtype=np.float32) / hop
        audio = sums[:, :, 0] + (sums[:, :, 1] - sums[:, :, 0]) * alpha
        return audio.reshape(audio.shape[0], -1)[:, :num_samples]

    def _noise(self, magnitude: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
        hop = self.noise_hop
        frames = num_samples // hop + 1
        factor = self.hop_length // hop
        if factor > 1:
            magnitude = _upsample(magnitude, (magnitude.shape[-1] - 1) * factor + 1, factor)
        magnitude = np.pad(magnitude, ((0, 0), (0, 0), (0, max(0, frames - magnitude.shape[-1]))), mode="edge")
        gaussian = noise_frames((magnitude.shape[0], magnitude.shape[1], frames, 2), seed)
        spectrum = (gaussian[..., 0] + 1j * gaussian[..., 1]) * (magnitude[..., :frames] * math.sqrt(self.noise_fft))
        return _istft(spectrum, self.noise_fft, hop, self._window, num_samples)

    def _reverb(self, audio: np.ndarray) -> np.ndarray:
        if self.ir.size == 0:
            return audio
        size = 1 << (audio.shape[-1] + len(self.ir) - 1).bit_length()
        wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(self.ir, size), size)
        return audio + wet[..., : audio.shape[-1]]


def _upsample(frames: np.ndarray, num_samples: int, hop: int) -> np.ndarray:
    """NumPy twin of :func:`flowsynth.impact.model.upsample` (linear, frame t at sample t * hop)."""
    if frames.shape[-1] > 1:
        alpha = np.arange(hop, dtype=frames.dtype) / np.asarray(hop, frames.dtype)
        left = frames[..., :-1, None]
        ramps = (left + (frames[..., 1:, None] - left) * alpha).reshape(*frames.shape[:-1], -1)
        out = np.concatenate([ramps, frames[..., -1:]], axis=-1)
    else:
        out = frames
    if out.shape[-1] >= num_samples:
        return out[..., :num_samples]
    return np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, num_samples - out.shape[-1])], mode="edge")


def _istft(spectrum: np.ndarray, n_fft: int, hop: int, window: np.ndarray, length: int) -> np.ndarray:
    """NumPy twin of ``torch.istft(center=True)``: windowed overlap-add divided by the window-square envelope."""
    frames = np.fft.irfft(spectrum, n_fft, axis=1).transpose(0, 2, 1) * window  # [B, frames, n_fft]
    out = _overlap_add(frames, hop)
    envelope = _overlap_add(np.broadcast_to(window**2, (1, frames.shape[1], n_fft)), hop)[0]
    start = n_fft // 2
    out = out[:, start : start + length] / envelope[start : start + length]
    return np.pad(out, ((0, 0), (0, max(0, length - out.shape[1])))).astype(np.float32)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """NumPy twin of the generator's overlap-add of frames [B, F, n_fft] placed ``hop`` apart."""
    count, n_fft = frames.shape[-2:]
    overlap = n_fft // hop
    pieces = frames.reshape(frames.shape[0], count, overlap, hop)
    out = np.zeros((frames.shape[0], count + overlap - 1, hop), np.float64)
    for k in range(overlap):
        out[:, k : k + count] += pieces[:, :, k]
    return out.reshape(frames.shape[0], -1)


def onnx_size_bytes(path: str | Path) -> int:
    """Size of an exported file in bytes."""
    return os.path.getsize(path)
