"""amsynth, the analogue-modelling synth, as a plugin synth; and its factory preset banks.

amsynth (Debian package ``amsynth``) ships a VST2 plugin, ``/usr/lib/vst/amsynth_vst.so``, with 41
parameters, and 27 banks of 128 presets in ``/usr/share/amsynth/banks``. A bank file is text::

    amSynth
    <preset> <name> basic11
    <parameter> amp_attack 0.0333333
    ...
    EOF

Values are in amsynth's own units; a parameter a preset leaves out keeps its default (older banks
have 36 of the 41). amsynth maps a value ``v`` to the plugin's raw value as ``(v - min) / (max - min)``
after clamping to ``[min, max]`` and rounding to its step (:data:`AMSYNTH_SPEC`), and the sound
follows a control value (seconds, Hz, ...) given by the parameter's law: linear
``offset + base * v``, exponential ``offset + base ** v`` or power ``offset + v ** base``. The
:class:`~flowsynth.synth.params.Param` of :class:`AmsynthSynth` map raw values to those control
values exactly.

Checked against amsynth 1.13.2 itself (the tests repeat the first two): the plugin's own display
text equals the control value computed here for every parameter on a grid of raw values; after
amsynth loads a factory preset natively (MIDI bank select and program change), its parameter
texts equal this module's mapping of the parsed preset; and the note it renders matches the note
rendered from the preset's vector (to about 1e-6 for presets without noise; noise and
sample-and-hold waveforms draw from amsynth's own generator and differ from run to run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from flowsynth.synth.base import RenderConfig
from flowsynth.synth.params import Param
from flowsynth.synth.plugin import PluginSynth, Reset
from flowsynth.synth.presets import Preset
from flowsynth.synth.worker import WorkerPool

__all__ = [
    "AMSYNTH_PATH",
    "AMSYNTH_BANKS",
    "AMSYNTH_SPEC",
    "AMSYNTH_16",
    "AMSYNTH_32",
    "AmsynthSynth",
    "BankPreset",
    "amsynth",
    "parse_bank",
    "load_bank_presets",
    "count_bank_presets",
    "preset_vector",
]

AMSYNTH_PATH = Path("/usr/lib/vst/amsynth_vst.so")
AMSYNTH_BANKS = Path("/usr/share/amsynth/banks")

_WAVE = ("sine", "pulse", "saw", "noise", "random")
_CHOICES = {
    "osc1_waveform": _WAVE,
    "osc2_waveform": _WAVE,
    "lfo_waveform": ("sine", "square", "triangle", "noise", "random", "saw up", "saw down"),
    "osc2_range": ("-3", "-2", "-1", "0", "+1", "+2", "+3", "+4"),
    "osc2_sync": ("off", "on"),
    "keyboard_mode": ("poly", "mono", "legato"),
    "filter_type": ("low-pass", "high-pass", "band-pass", "band-stop", "bypass"),
    "filter_slope": ("12 dB", "24 dB"),
    "freq_mod_osc": ("osc 1+2", "osc 1", "osc 2"),
    "portamento_mode": ("always", "legato"),
}
_CHOICES["osc2_pitch"] = tuple(f"{k:+d}" for k in range(-12, 13))

#: amsynth's parameters in plugin order: name, default, min, max, step, law, base, offset, units.
AMSYNTH_SPEC: tuple[tuple[str, float, float, float, float, str, float, float, str], ...] = (
    ("amp_attack", 0.0, 0.0, 2.5, 0.0, "power", 3.0, 0.0005, "s"),
    ("amp_decay", 0.0, 0.0, 2.5, 0.0, "power", 3.0, 0.0005, "s"),
    ("amp_sustain", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("amp_release", 0.0, 0.0, 2.5, 0.0, "power", 3.0, 0.0005, "s"),
    ("osc1_waveform", 2.0, 0.0, 4.0, 1.0, "linear", 1.0, 0.0, ""),
    ("filter_attack", 0.0, 0.0, 2.5, 0.0, "power", 3.0, 0.0005, "s"),
    ("filter_decay", 0.0, 0.0, 2.5, 0.0, "power", 3.0, 0.0005, "s"),
    ("filter_sustain", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("filter_release", 0.0, 0.0, 2.5, 0.0, "power", 3.0, 0.0005, "s"),
    ("filter_resonance", 0.0, 0.0, 0.97, 0.0, "linear", 1.0, 0.0, ""),
    ("filter_env_amount", 0.0, -16.0, 16.0, 0.0, "linear", 1.0, 0.0, ""),
    ("filter_cutoff", 1.5, -0.5, 1.5, 0.0, "exponential", 16.0, 0.0, ""),
    ("osc2_detune", 0.0, -1.0, 1.0, 0.0, "exponential", 1.25, 0.0, ""),
    ("osc2_waveform", 2.0, 0.0, 4.0, 1.0, "linear", 1.0, 0.0, ""),
    ("master_vol", 0.67, 0.0, 1.0, 0.0, "power", 2.0, 0.0, ""),
    ("lfo_freq", 0.0, 0.0, 7.5, 0.0, "power", 2.0, 0.0, "Hz"),
    ("lfo_waveform", 0.0, 0.0, 6.0, 1.0, "linear", 1.0, 0.0, ""),
    ("osc2_range", 0.0, -3.0, 4.0, 1.0, "exponential", 2.0, 0.0, ""),
    ("osc_mix", 0.0, -1.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("freq_mod_amount", 0.0, 0.0, 1.25992105, 0.0, "power", 3.0, -1.0, ""),
    ("filter_mod_amount", -1.0, -1.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("amp_mod_amount", -1.0, -1.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("osc_mix_mode", 0.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("osc1_pulsewidth", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("osc2_pulsewidth", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("reverb_roomsize", 0.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("reverb_damp", 0.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("reverb_wet", 0.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("reverb_width", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("distortion_crunch", 0.0, 0.0, 0.9, 0.0, "linear", 1.0, 0.0, ""),
    ("osc2_sync", 0.0, 0.0, 1.0, 1.0, "linear", 1.0, 0.0, ""),
    ("portamento_time", 0.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("keyboard_mode", 0.0, 0.0, 2.0, 1.0, "linear", 1.0, 0.0, ""),
    ("osc2_pitch", 0.0, -12.0, 12.0, 1.0, "linear", 1.0, 0.0, "semitones"),
    ("filter_type", 0.0, 0.0, 4.0, 1.0, "linear", 1.0, 0.0, ""),
    ("filter_slope", 1.0, 0.0, 1.0, 1.0, "linear", 1.0, 0.0, ""),
    ("freq_mod_osc", 0.0, 0.0, 2.0, 1.0, "linear", 1.0, 0.0, ""),
    ("filter_kbd_track", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("filter_vel_sens", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("amp_vel_sens", 1.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
    ("portamento_mode", 0.0, 0.0, 1.0, 0.0, "linear", 1.0, 0.0, ""),
)
_NAMES = tuple(s[0] for s in AMSYNTH_SPEC)

#: The 16 parameters that shape an amsynth sound most: oscillators, filter and both envelopes.
AMSYNTH_16: tuple[str, ...] = (
    "osc1_waveform", "osc2_waveform", "osc_mix", "osc2_detune", "osc2_range",
    "filter_cutoff", "filter_resonance", "filter_env_amount",
    "amp_attack", "amp_decay", "amp_sustain", "amp_release",
    "filter_attack", "filter_decay", "filter_sustain", "filter_release",
)  # fmt: skip
#: :data:`AMSYNTH_16` and 16 more: pulse widths, ring modulation, sync, filter type, LFO and effects.
AMSYNTH_32: tuple[str, ...] = (
    *AMSYNTH_16,
    "osc1_pulsewidth", "osc2_pulsewidth", "osc2_pitch", "osc2_sync", "osc_mix_mode",
    "filter_type", "filter_slope", "filter_kbd_track",
    "lfo_freq", "lfo_waveform", "freq_mod_amount", "filter_mod_amount", "amp_mod_amount",
    "distortion_crunch", "reverb_wet", "reverb_roomsize",
)  # fmt: skip


def control_value(name: str, value: float) -> float:
    """amsynth's control value (what the sound follows, and what the plugin displays) of a preset value.

    Example:
        >>> round(control_value("filter_cutoff", 1.5), 3), round(control_value("amp_attack", 1.0), 4)
        (64.0, 1.0005)
    """
    _, _, _, _, _, law, base, offset, _ = AMSYNTH_SPEC[_NAMES.index(name)]
    if law == "linear":
        return offset + base * value
    if law == "exponential":
        return offset + base**value
    return offset + value**base


def raw_value(name: str, value: float) -> float:
    """The plugin's raw value in [0, 1] of a preset value, as amsynth computes it (clamp, step, scale).

    Example:
        >>> raw_value("osc1_waveform", 2.4), raw_value("filter_env_amount", 8.0)
        (0.5, 0.75)
    """
    _, _, lo, hi, step, *_ = AMSYNTH_SPEC[_NAMES.index(name)]
    value = min(max(value, lo), hi)
    if step > 0:
        value = lo + math.floor((value - lo) / step + 0.5) * step
    if name == "portamento_mode":  # stored with no step, but amsynth plays the mode int(value)
        value = float(int(value))
    return (value - lo) / (hi - lo)


def _param(spec: tuple) -> Param:
    """The Param whose normalized value is the raw value and whose units are the control value."""
    name, default, lo, hi, _, law, base, offset, units = spec
    x0 = raw_value(name, default)
    if name in _CHOICES:
        return Param(name, default=float(round(x0 * (len(_CHOICES[name]) - 1))), units=units, choices=_CHOICES[name])
    if law == "exponential":  # offset + base ** (lo + (hi - lo) x): geometric between its ends
        a, b = base**lo, base**hi
        return Param(name, a, b, default=a * (b / a) ** x0, units=units, log=True)
    if law == "power":  # offset + ((hi - lo) x) ** base, with lo = 0
        top = offset + hi**base
        return Param(name, offset, top, default=offset + (hi * x0) ** base, units=units, curve=base)
    return Param(name, offset + base * lo, offset + base * hi, default=offset + base * default, units=units)


@dataclass(frozen=True)
class BankPreset:
    """One factory preset: its name, bank (file name without suffixes), slot, and raw vector ``[41]``."""

    name: str
    bank: str
    program: int
    vector: Tensor


def parse_bank(path: str | Path) -> list[tuple[str, dict[str, float]]]:
    """Reads an amsynth bank file: ``[(preset name, {parameter: value in amsynth units})]`` in slot order.

    Raises:
        ValueError: If the file is not an amsynth bank (the message gives the line).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "amSynth":
        raise ValueError(f"{path} is not an amsynth bank: its first line is not 'amSynth'")
    presets: list[tuple[str, dict[str, float]]] = []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("<preset> <name>"):
            presets.append((line.removeprefix("<preset> <name>").strip(), {}))
        elif line.startswith("<parameter>") and presets:
            parts = line.split()
            try:
                presets[-1][1][parts[1]] = float(parts[2])
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{number}: expected '<parameter> NAME VALUE', got {line!r}") from None
        elif line.strip() not in ("", "EOF"):
            raise ValueError(f"{path}:{number}: unexpected line {line!r} in an amsynth bank")
    return presets


def preset_vector(values: dict[str, float]) -> Tensor:
    """The raw vector ``[41]`` of a preset's values (missing parameters at their default, unknown ones ignored)."""
    return torch.tensor([raw_value(s[0], values.get(s[0], s[1])) for s in AMSYNTH_SPEC], dtype=torch.float32)


def _scan(paths: list[Path] | None) -> tuple[list[BankPreset], dict[str, int]]:
    files = sorted(AMSYNTH_BANKS.glob("*.bank")) if paths is None else [Path(p) for p in paths]
    blank = preset_vector({})
    presets, seen, counts = [], set(), {"slots": 0, "blank": 0, "duplicate": 0, "kept": 0}
    for file in files:
        for program, (name, values) in enumerate(parse_bank(file)):
            counts["slots"] += 1
            vector = preset_vector(values)
            key = tuple(vector.tolist())
            kind = "blank" if torch.equal(vector, blank) else "duplicate" if key in seen else "kept"
            counts[kind] += 1
            seen.add(key)
            if kind == "kept":
                presets.append(BankPreset(name, file.name.split(".")[0], program, vector))
    return presets, counts


def load_bank_presets(paths: list[str | Path] | None = None) -> list[BankPreset]:
    """The presets of amsynth banks (default: every factory bank), without blank slots and repeats.

    A blank slot is a preset whose every value is amsynth's default (an untouched slot); a repeat has
    the same vector as a preset before it (the factory banks repeat 179 of their 3,482 slots, 58 of them
    'YouPickWhich'). :func:`count_bank_presets` says how many of each were left out.
    """
    return _scan(None if paths is None else [Path(p) for p in paths])[0]


def count_bank_presets(paths: list[str | Path] | None = None) -> dict[str, int]:
    """How many slots the banks hold, and how many :func:`load_bank_presets` keeps, as blank and as repeats.

    With amsynth 1.13.2's factory banks it returns
    ``{'slots': 3482, 'blank': 0, 'duplicate': 179, 'kept': 3303}``.
    """
    return _scan(None if paths is None else [Path(p) for p in paths])[1]


class AmsynthSynth(PluginSynth):
    """amsynth's VST2 plugin, with its parameters in amsynth's units and its factory presets.

    Arguments:
        path: The plugin (default :data:`AMSYNTH_PATH`).
        timeout_s, reset, settle_s, pool: As for :class:`~flowsynth.synth.plugin.PluginSynth`.
    """

    def __init__(
        self, path: str | Path = AMSYNTH_PATH, timeout_s: float = 60.0, reset: Reset = "preroll",
        settle_s: float = 0.5, pool: WorkerPool | None = None,
    ) -> None:  # fmt: skip
        super().__init__(path, "amsynth", timeout_s=timeout_s, reset=reset, settle_s=settle_s, pool=pool)

    def _make_params(self, described: list[dict]) -> tuple[Param, ...]:
        names = tuple(d["name"] for d in described)
        if names != _NAMES:
            raise ValueError(f"{self.path} does not have amsynth 1.13's 41 parameters; it has {len(names)}: {names}")
        return tuple(_param(spec) for spec in AMSYNTH_SPEC)

    def describe(self) -> dict:
        return {**super().describe(), "variant": "amsynth"}

    def factory_presets(self) -> list[Preset]:
        """The factory presets (see :func:`load_bank_presets`) as learned vectors, tagged with their bank.

        A preset's parameters that this synth does not learn are not in its vector: they render
        at this synth's fixed values, not the preset's.
        """
        index = torch.tensor([_NAMES.index(n) for n in self.space.learned])
        return [Preset(p.name, p.vector[index], (p.bank,)) for p in load_bank_presets()]

    def render_native(self, preset: BankPreset, config: RenderConfig | None = None) -> Tensor:
        """Renders a factory preset as amsynth loads it itself (MIDI bank select and program change).

        Banks are numbered as amsynth numbers them: the factory bank files in name order.
        """
        files = sorted(p.name.split(".")[0] for p in AMSYNTH_BANKS.glob("*.bank"))
        config = config or RenderConfig()
        args = (files.index(preset.bank), preset.program, config.describe())
        audio = self.pool.call(self.spec, config.sample_rate, "render_program", *args, timeout_s=self.timeout_s)
        return torch.from_numpy(audio)


def amsynth(count: int | None = None, **options: object) -> PluginSynth:
    """amsynth learning all 41 parameters (``count=None``), or :data:`AMSYNTH_16` or :data:`AMSYNTH_32`.

    Other parameters stay at amsynth's defaults. ``options`` go to :class:`AmsynthSynth`.
    """
    subsets = {None: _NAMES, 16: AMSYNTH_16, 32: AMSYNTH_32}
    if count not in subsets:
        raise ValueError(f"amsynth learns all, 16 or 32 parameters; got count={count}")
    synth = AmsynthSynth(**options)  # type: ignore[arg-type]
    return synth.select(subsets[count])  # type: ignore[return-value]
