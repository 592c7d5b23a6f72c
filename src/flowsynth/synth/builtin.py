"""The built-in synth: a batched, differentiable subtractive voice in pure torch."""

from __future__ import annotations

import torch
from torch import Tensor

from flowsynth.errors import RenderError
from flowsynth.synth.base import OnError, RenderConfig, Synth
from flowsynth.synth.modules import adsr, control_to_audio, lfo, morph_oscillator, noise, spectral_filter_decimate
from flowsynth.synth.params import Param

__all__ = ["BuiltinSynth", "BUILTIN_16", "BUILTIN_32"]


def _oscillator(i: int, level: float) -> tuple[Param, ...]:
    osc = f"osc{i}"
    return (
        Param(f"{osc}_shape", default=0.67, description=f"oscillator {i} waveform: sine, triangle, saw, pulse"),
        Param(f"{osc}_tune", -24.0, 24.0, default=0.0, units="semitones", description=f"oscillator {i} coarse tune"),
        Param(f"{osc}_fine", -50.0, 50.0, default=0.0, units="cents", description=f"oscillator {i} fine tune"),
        Param(f"{osc}_level", default=level, description=f"oscillator {i} level in the mix"),
        Param(f"{osc}_pw", 0.05, 0.95, default=0.5, description=f"oscillator {i} pulse width"),
    )


def _envelope(prefix: str, what: str, sustain: float) -> tuple[Param, ...]:
    return (
        Param(f"{prefix}_attack", 0.001, 2.0, default=0.005, units="s", log=True, description=f"{what} attack time"),
        Param(f"{prefix}_decay", 0.01, 3.0, default=0.3, units="s", log=True, description=f"{what} decay time"),
        Param(f"{prefix}_sustain", default=sustain, description=f"{what} sustain level"),
        Param(f"{prefix}_release", 0.01, 2.0, default=0.2, units="s", log=True, description=f"{what} release time"),
    )


PARAMS: tuple[Param, ...] = (
    *_oscillator(1, 0.8),
    *_oscillator(2, 0.0),
    *_oscillator(3, 0.0),
    Param("fm_amount", 0.0, 5.0, default=0.0, units="rad", description="phase modulation of osc 2 and 3 by osc 1"),
    Param("noise_level", default=0.0, description="white noise level in the mix"),
    Param("filter_cutoff", 30.0, 16000.0, default=4000.0, units="Hz", log=True, description="low-pass cut-off"),
    Param("filter_resonance", default=0.2, description="low-pass resonance (1 is near self-oscillation)"),
    Param("filter_env_amount", -4.0, 6.0, default=2.0, units="octaves", description="filter envelope to cut-off"),
    Param("filter_keytrack", default=0.5, description="cut-off follows the note (1: one octave per octave)"),
    Param("filter_drive", default=0.0, description="saturation before the filter"),
    *_envelope("amp", "amplitude", 0.7),
    *_envelope("filter", "filter envelope", 0.3),
    Param("lfo_rate", 0.1, 12.0, default=5.0, units="Hz", log=True, description="LFO rate"),
    Param("lfo_depth", default=0.0, description="LFO depth (2 semitones, 2 octaves or 50% amplitude at 1)"),
    Param("lfo_target", default=0.0, description="LFO target morph: 0 pitch (vibrato), 0.5 cut-off, 1 amplitude"),
)

#: The 32 parameters a model learns by default: all but key tracking (silent at a fixed note).
BUILTIN_32: tuple[str, ...] = tuple(p.name for p in PARAMS if p.name != "filter_keytrack")

#: The 16 parameters that shape the sound most.
BUILTIN_16: tuple[str, ...] = (
    "osc1_shape",
    "osc2_shape",
    "osc2_tune",
    "osc2_level",
    "fm_amount",
    "noise_level",
    "filter_cutoff",
    "filter_resonance",
    "filter_env_amount",
    "amp_attack",
    "amp_decay",
    "amp_sustain",
    "amp_release",
    "filter_decay",
    "lfo_rate",
    "lfo_depth",
)


class BuiltinSynth(Synth):
    """The built-in subtractive synth, Diva-style, differentiable in every parameter.

    Signal flow, per voice: three morphing oscillators (sine -> triangle -> saw ->
    pulse, PolyBLEP band-limited, oscillators 2 and 3 phase-modulated by 1) and
    white noise -> drive (tanh) -> 4-pole resonant ladder low-pass whose cut-off
    moves with its envelope, key and LFO -> amplitude ADSR. Oscillators run
    ``oversample`` times faster than the output; the filter runs frame-wise in the
    frequency domain and decimates with an ideal low-pass, so nothing aliases.

    Arguments:
        oversample: Internal rate multiple (1 or 2).
        control_hop: Samples per control-rate step (envelopes, LFO).
        micro_batch: Sounds computed together; small batches stay in the CPU's
            caches and skip the waveforms they don't use, so they are faster.

    Example:
        >>> synth = BuiltinSynth().select(BUILTIN_16)
        >>> synth.render(torch.full((2, 16), 0.5), render_s=1.0, note_s=0.5).shape
        torch.Size([2, 22050])
    """

    name = "builtin"
    differentiable = True

    def __init__(self, oversample: int = 2, control_hop: int = 64, micro_batch: int = 1) -> None:
        if oversample not in (1, 2, 4):
            raise ValueError(f"oversample must be 1, 2 or 4, got {oversample}")
        self.oversample = oversample
        self.control_hop = control_hop
        self.micro_batch = micro_batch
        super().__init__()

    @property
    def params(self) -> tuple[Param, ...]:
        return PARAMS

    def describe(self) -> dict:
        options = {"oversample": self.oversample, "control_hop": self.control_hop, "micro_batch": self.micro_batch}
        return {"kind": "builtin", "options": options, **super().describe()}

    def render_full(self, params: Tensor, config: RenderConfig, seed: int, on_error: OnError) -> Tensor:
        v = {p.name: p.to_units(params[:, i]) for i, p in enumerate(PARAMS)}
        chunks = [
            {k: x[i : i + self.micro_batch] for k, x in v.items()} for i in range(0, len(params), self.micro_batch)
        ]
        audio = (
            torch.cat([self._voice(chunk, config, seed) for chunk in chunks])
            if chunks
            else params.new_zeros(0, config.num_samples)
        )
        broken = ~torch.isfinite(audio).all(dim=1)
        if broken.any() and on_error == "raise":
            raise RenderError(f"builtin synth produced NaN for sound(s) {broken.nonzero().flatten().tolist()}")
        return audio

    def _voice(self, v: dict[str, Tensor], config: RenderConfig, seed: int) -> Tensor:
        rate = config.sample_rate * self.oversample
        n = config.num_samples * self.oversample
        t_control = torch.arange(n // self.control_hop + 1) * (self.control_hop / rate)
        velocity = config.velocity / 127.0
        mod = lfo(t_control, v["lfo_rate"]) * v["lfo_depth"][:, None]
        to_pitch, to_cutoff, to_amp = _lfo_routing(v["lfo_target"])

        pitch = control_to_audio(2.0 ** (2.0 / 12.0 * mod * to_pitch[:, None]), n)
        mix = self._oscillators(v, pitch * (config.frequency_hz / rate))
        mix = mix + v["noise_level"][:, None] * noise(seed, n)
        drive = 0.25 + 4.0 * v["filter_drive"][:, None]
        mix = torch.tanh(drive * mix / 3.0) / drive

        filter_env = self._envelope(v, "filter", t_control, config.note_s)
        octaves = v["filter_env_amount"][:, None] * filter_env * velocity + 2.0 * mod * to_cutoff[:, None]
        octaves = octaves + v["filter_keytrack"][:, None] * (config.note - 60.0) / 12.0
        cutoff = (v["filter_cutoff"][:, None] * 2.0**octaves).clamp(20.0, 0.45 * rate)
        n_fft = 1024 * self.oversample
        frames = n // (n_fft // 4) + 1
        cutoff = control_to_audio(cutoff, frames)
        out = spectral_filter_decimate(
            mix, cutoff, v["filter_resonance"], rate, self.oversample, n_fft, config.num_samples
        )

        t_out = torch.arange(config.num_samples // self.control_hop + 1) * (self.control_hop / config.sample_rate)
        amp = self._envelope(v, "amp", t_out, config.note_s)
        amp = amp * (1.0 + 0.5 * lfo(t_out, v["lfo_rate"]) * v["lfo_depth"][:, None] * to_amp[:, None])
        return out * control_to_audio(amp, config.num_samples) * velocity

    def _oscillators(self, v: dict[str, Tensor], dt_base: Tensor) -> Tensor:
        """Sums the three oscillators; ``dt_base`` is the note's phase increment ``[B, N]``."""
        phase_base = torch.cumsum(dt_base.double(), dim=1)
        phase_base = phase_base - dt_base[:, :1].double()
        mix = torch.zeros_like(dt_base)
        modulator = None
        for i in (1, 2, 3):
            ratio = 2.0 ** ((v[f"osc{i}_tune"] + v[f"osc{i}_fine"] / 100.0) / 12.0)
            phase = ratio[:, None].double() * phase_base
            phase = (phase - torch.floor(phase.detach())).float()
            dt = ratio[:, None] * dt_base
            if modulator is not None:
                offset = v["fm_amount"][:, None] / (2 * torch.pi) * modulator
                phase = phase + offset
                dt = (dt + torch.diff(offset, dim=1, prepend=offset[:, :1])).abs()
            else:
                modulator = torch.sin(2 * torch.pi * phase)
            wave = morph_oscillator(phase, dt, v[f"osc{i}_shape"], v[f"osc{i}_pw"])
            mix = mix + v[f"osc{i}_level"][:, None] * wave
        return mix

    @staticmethod
    def _envelope(v: dict[str, Tensor], prefix: str, t: Tensor, note_s: float) -> Tensor:
        return adsr(
            t, v[f"{prefix}_attack"], v[f"{prefix}_decay"], v[f"{prefix}_sustain"], v[f"{prefix}_release"], note_s
        )


def _lfo_routing(target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Weights of the LFO to pitch, cut-off and amplitude for a target morph in [0, 1]."""
    to_pitch = (1.0 - 2.0 * target).clamp(min=0.0)
    to_amp = (2.0 * target - 1.0).clamp(min=0.0)
    return to_pitch, 1.0 - to_pitch - to_amp, to_amp
