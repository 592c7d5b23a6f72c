"""The built-in synth: a batched, differentiable subtractive voice in pure torch."""

from __future__ import annotations

import torch
from torch import Tensor

from flowsynth.synth.base import OnError, RenderConfig, Synth
from flowsynth.synth.modules import (
    TABLE_SIZE,
    adsr,
    block_linear,
    block_phase,
    control_points,
    control_to_audio,
    lfo,
    morph_wavetable,
    noise,
    soft_clip,
    spectral_filter_decimate,
    wavetable_lookup,
)
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

    def __init__(self, oversample: int = 1, control_hop: int = 64, micro_batch: int = 1) -> None:
        if oversample not in (1, 2, 4):
            raise ValueError(f"oversample must be 1, 2 or 4, got {oversample}")
        self.oversample = oversample
        self.control_hop = control_hop
        self.micro_batch = micro_batch
        self.n_fft = 1024 * oversample
        super().__init__()

    @property
    def params(self) -> tuple[Param, ...]:
        return PARAMS

    def describe(self) -> dict:
        options = {"oversample": self.oversample, "control_hop": self.control_hop, "micro_batch": self.micro_batch}
        return {"kind": "builtin", "options": options, **super().describe()}

    def render_full(self, params: Tensor, config: RenderConfig, seed: int, on_error: OnError) -> Tensor:
        v = {p.name: p.to_units(params[:, i]) for i, p in enumerate(PARAMS)}
        controls = self._controls(v, config)
        step = self.micro_batch
        pieces = [
            self._audio({k: c[i : i + step] for k, c in controls.items()}, config, seed)
            for i in range(0, len(params), step)
        ]
        return torch.cat(pieces)

    def _controls(self, v: dict[str, Tensor], config: RenderConfig) -> dict[str, Tensor]:
        """Everything that changes at the control rate or slower, for the whole batch at once."""
        rate = config.sample_rate * self.oversample
        n = config.num_samples * self.oversample
        t_control = control_points(n, self.control_hop, rate)
        velocity = config.velocity / 127.0
        mod = lfo(t_control, v["lfo_rate"]) * v["lfo_depth"][:, None]
        to_pitch, to_cutoff, to_amp = _lfo_routing(v["lfo_target"])
        increment = 2.0 ** (2.0 / 12.0 * mod * to_pitch[:, None]) * (config.frequency_hz / rate)
        drive = 0.25 + 4.0 * v["filter_drive"]

        filter_env = self._envelope(v, "filter", t_control, config.note_s)
        octaves = v["filter_env_amount"][:, None] * filter_env * velocity + 2.0 * mod * to_cutoff[:, None]
        octaves = octaves + v["filter_keytrack"][:, None] * (config.note - 60.0) / 12.0
        cutoff = (v["filter_cutoff"][:, None] * 2.0**octaves).clamp(20.0, 0.45 * rate)
        frames = n // (self.n_fft // 2) + 2

        t_out = control_points(config.num_samples, self.control_hop, config.sample_rate)
        amp = self._envelope(v, "amp", t_out, config.note_s) * velocity
        amp = amp * (1.0 + 0.5 * lfo(t_out, v["lfo_rate"]) * v["lfo_depth"][:, None] * to_amp[:, None])
        return {
            **self._oscillator_controls(v, increment, drive / 3.0),
            "increment": increment,
            "noise": v["noise_level"] * drive / 3.0,
            "cutoff": control_to_audio(cutoff, frames),
            "resonance": v["filter_resonance"],
            "amp": amp / drive[:, None],
        }

    def _oscillator_controls(self, v: dict[str, Tensor], increment: Tensor, gain: Tensor) -> dict[str, Tensor]:
        """Tune ratios, phase modulation depths, levels and band-limited wavetables ``[B, 3, ...]``.

        Each oscillator's table holds only the harmonics that stay below half a cycle
        per sample at the output rate at its highest instantaneous frequency, vibrato
        and phase modulation included.
        """
        osc = {name: torch.stack([v[f"osc{i}_{name}"] for i in (1, 2, 3)], dim=1) for name in _OSC}
        ratio = 2.0 ** ((osc["tune"] + osc["fine"] / 100.0) / 12.0)
        fm = v["fm_amount"][:, None] * torch.tensor([0.0, 1.0, 1.0])
        top = ratio.detach() * increment.detach().amax(dim=1, keepdim=True)
        top = top + fm.detach() * top[:, :1]
        harmonics = torch.floor(0.5 / self.oversample / top).clamp(1.0, TABLE_SIZE // 2 - 1)
        tables = morph_wavetable(osc["shape"].flatten(), osc["pw"].flatten(), harmonics.flatten())
        return {
            "ratio": ratio,
            "fm": fm / (2 * torch.pi),
            "level": osc["level"] * gain[:, None],
            "tables": tables.view(len(ratio), 3, -1),
        }

    def _audio(self, c: dict[str, Tensor], config: RenderConfig, seed: int) -> Tensor:
        """Oscillators and noise -> drive -> filter -> amplifier, at the audio rate."""
        rate = config.sample_rate * self.oversample
        n = config.num_samples * self.oversample
        mix = self._oscillators(c)[:, :n]
        mix = soft_clip(torch.addcmul(mix, c["noise"][:, None], noise(seed, n)))
        out = spectral_filter_decimate(
            mix, c["cutoff"], c["resonance"], rate, self.oversample, self.n_fft, config.num_samples
        )
        return out * block_linear(c["amp"], self.control_hop, config.num_samples)

    def _oscillators(self, c: dict[str, Tensor]) -> Tensor:
        """The sum of the three oscillators, computed as one batch, 1 phase-modulating 2 and 3."""
        batch = len(c["increment"])
        phase = block_phase((c["ratio"][:, :, None] * c["increment"][:, None, :]).flatten(0, 1), self.control_hop)
        phase = phase.view(batch, 3, -1)
        modulator = torch.sin(2 * torch.pi * phase[:, 0])
        phase = torch.addcmul(phase, c["fm"][:, :, None], modulator[:, None])
        waves = wavetable_lookup(c["tables"].flatten(0, 1), phase.flatten(0, 1)).view(batch, 3, -1)
        return torch.bmm(c["level"][:, None, :], waves)[:, 0]

    @staticmethod
    def _envelope(v: dict[str, Tensor], prefix: str, t: Tensor, note_s: float) -> Tensor:
        return adsr(
            t, v[f"{prefix}_attack"], v[f"{prefix}_decay"], v[f"{prefix}_sustain"], v[f"{prefix}_release"], note_s
        )


_OSC = ("tune", "fine", "shape", "pw", "level")


def _lfo_routing(target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Weights of the LFO to pitch, cut-off and amplitude for a target morph in [0, 1]."""
    to_pitch = (1.0 - 2.0 * target).clamp(min=0.0)
    to_amp = (2.0 * target - 1.0).clamp(min=0.0)
    return to_pitch, 1.0 - to_pitch - to_amp, to_amp
