"""VST2 and VST3 instruments as synths, hosted by dawdreamer in worker processes.

Every parameter of the plugin is a :class:`~flowsynth.synth.params.Param` whose normalized value
*is* the plugin's own raw value in [0, 1] (``raw_value`` always means that). The plugin's
label becomes the units; a parameter the plugin declares discrete, with at most 64 steps, gets
choices (its value strings when it gives them). Learn a subset with ``synth.select([...names])``.

How a sound is played (the same for every plugin): the parameters are set; all-sound-off and
all-notes-off (MIDI CC 120 and 123) clear what the last sound left; a quiet settling note
(velocity 1) plays for ``settle_s`` so that the plugin's parameter smoothing reaches the new
values; all-sound-off again, then the note (``note``, ``velocity``, held ``note_s``), and
``render_s`` of audio from its start, mixed down to mono.

``reset="preroll"`` (default) reuses one plugin instance for every sound, which is fast, but a
plugin may keep state that no MIDI message clears: amsynth's LFO keeps running from one note to
the next, its noise generator and oscillator sync carry on, so such sounds change a little with
what was played before. ``reset="reload"`` builds a fresh instance for every sound: the audio is
then a function of the parameters alone (except amsynth's noise, whose generator is shared by the
process), at the cost of loading the plugin each time.

State files are JSON: the raw value of every parameter by name (``save_state`` / ``load_state``).
dawdreamer's own ``load_state`` is not used: with amsynth it ends the process when no display is
available (GTK), which the worker would turn into a RenderError for every call.
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from flowsynth.synth.base import OnError, RenderConfig
from flowsynth.synth.params import Param
from flowsynth.synth.worker import EngineSpec, PooledSynth, WorkerPool

__all__ = ["PluginSynth", "PluginEngine", "midi_file", "PLUGIN_SUFFIXES"]

#: File name suffixes of the plugin formats dawdreamer hosts on Linux.
PLUGIN_SUFFIXES = (".so", ".vst3")
Reset = Literal["preroll", "reload"]
_MAX_STEPS = 64
#: A plugin sound whose peak reaches this (+40 dBFS) has blown up.
BLOWN_UP_PEAK = 100.0
_STATE_FORMAT = "flowsynth.plugin-state/1"


def midi_file(events: list[tuple[float, bytes]]) -> bytes:
    """A one-track Standard MIDI File of ``(time_s, message)`` events (120 bpm, 960 ticks per second).

    Example:
        >>> data = midi_file([(0.0, bytes([0xB0, 120, 0]))])
        >>> data[:4], len(data)
        (b'MThd', 30)
    """
    track, last = b"", 0
    for time_s, message in sorted(events, key=lambda e: e[0]):
        tick = round(time_s * 960)
        delta, last = tick - last, tick
        varlen = [delta & 0x7F]
        while delta := delta >> 7:
            varlen.append(0x80 | (delta & 0x7F))
        track += bytes(reversed(varlen)) + message
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


def _sound_off(time_s: float) -> list[tuple[float, bytes]]:
    return [(time_s, bytes([0xB0, 120, 0])), (time_s, bytes([0xB0, 123, 0]))]


class PluginEngine:
    """Worker side: one plugin in a dawdreamer render engine (see the module docstring for how it plays).

    Arguments:
        sample_rate: Render sample rate in Hz.
        path: The plugin file.
        reset: ``"preroll"`` (reuse the instance) or ``"reload"`` (a fresh instance for every sound).
        settle_s: Length of the settling note before each sound (0 for none).
        block_size: Render block size in samples.
    """

    def __init__(self, sample_rate: int, path: str, reset: Reset = "preroll", settle_s: float = 0.5, block_size: int = 256):  # fmt: skip
        import dawdreamer as daw

        self.sample_rate, self.path, self.reset, self.settle_s = sample_rate, path, reset, settle_s
        self.engine = daw.RenderEngine(sample_rate, block_size)
        self.folder = tempfile.TemporaryDirectory(prefix="flowsynth-plugin-")
        self.processor = self._load()

    def _load(self) -> Any:
        try:
            processor = self.engine.make_plugin_processor("plugin", self.path)
        except RuntimeError as error:
            raise ValueError(f"{self.path} could not be loaded as a VST2/VST3 instrument ({error})") from None
        if processor.get_num_output_channels() < 1:
            raise ValueError(f"{self.path} has no audio output; flowsynth plays instruments")
        self.engine.load_graph([(processor, [])])
        return processor

    def describe(self) -> list[dict]:
        """Every parameter: index, name, label, discreteness, value strings, default raw value and text.

        Read from a fresh instance: one that has played sounds holds their values, not the defaults.
        """
        self.processor = p = self._load()
        out = []
        for d, (_, value) in zip(p.get_parameters_description(), p.get_patch(), strict=True):
            keys = ("index", "name", "label", "isDiscrete", "isBoolean", "numSteps", "valueStrings")
            out.append({k: d.get(k) for k in keys} | {"value": value, "text": p.get_parameter_text(d["index"])})
        return out

    def texts(self, values: np.ndarray) -> list[str]:
        """The plugin's display text of every parameter once ``values`` (raw) are set."""
        self._set(values)
        self.engine.render(0.01)
        return [self.processor.get_parameter_text(i) for i in range(len(values))]

    def _set(self, values: np.ndarray) -> None:
        if len(values) != self.processor.get_plugin_parameter_size():
            raise ValueError(f"expected {self.processor.get_plugin_parameter_size()} values, got {len(values)}")
        for index, value in enumerate(values):
            self.processor.set_parameter(index, float(value))

    def _play(self, config: dict, events: list[tuple[float, bytes]]) -> np.ndarray:
        settle_s = self.settle_s
        path = Path(self.folder.name) / "events.mid"
        path.write_bytes(midi_file(events + _sound_off(0.0) + _sound_off(settle_s)))
        self.processor.load_midi(str(path), clear_previous=True, all_events=True)
        note = int(config["note"])
        if settle_s > 0:
            self.processor.add_midi_note(note, 1, 0.0, 0.9 * settle_s)
        self.processor.add_midi_note(note, int(config["velocity"]), settle_s, config["note_s"])
        self.engine.render(settle_s + config["render_s"])
        return self.engine.get_audio()[:, round(settle_s * self.sample_rate) :].mean(axis=0)

    def render(self, values: np.ndarray, config: dict, seed: int) -> np.ndarray:
        """Plays one note with the raw parameter values ``values`` (the seed is not used: plugins have none)."""
        if self.reset == "reload":
            self.processor = self._load()
        self._set(values)
        audio = self._play(config, [])
        if self.reset == "preroll" and not _healthy(audio):
            # a NaN or a blown-up filter stays in the instance and would spoil every later sound:
            # play this one again on a fresh instance, and leave a fresh one for the next
            self.processor = self._load()
            self._set(values)
            audio = self._play(config, [])
            if not _healthy(audio):
                self.processor = self._load()
        return audio

    def render_program(self, bank: int, program: int, config: dict) -> np.ndarray:
        """Plays one note with the plugin's own program, chosen by MIDI bank select and program change."""
        self.processor = self._load()
        change = [(0.0, bytes([0xB0, 0, bank])), (0.0, bytes([0xB0, 32, 0])), (0.0, bytes([0xC0, program]))]
        return self._play(config, change)

    def program_texts(self, bank: int, program: int) -> list[str]:
        """The display text of every parameter after the plugin loads its own program ``program`` of ``bank``."""
        self.processor = self._load()
        path = Path(self.folder.name) / "program.mid"
        path.write_bytes(midi_file([(0.0, bytes([0xB0, 0, bank])), (0.0, bytes([0xB0, 32, 0])), (0.0, bytes([0xC0, program]))]))  # fmt: skip
        self.processor.load_midi(str(path), clear_previous=True, all_events=True)
        self.engine.render(0.05)
        return [self.processor.get_parameter_text(i) for i in range(self.processor.get_plugin_parameter_size())]


def _healthy(audio: np.ndarray) -> bool:
    """No NaN or infinity, and no blow-up (a peak of 100, +40 dBFS)."""
    return bool(np.isfinite(audio).all() and np.abs(audio).max(initial=0.0) < BLOWN_UP_PEAK)


class PluginSynth(PooledSynth):
    """A VST2 (``.so``) or VST3 (``.vst3``) instrument played as a synth.

    Arguments:
        path: The plugin file (or VST3 bundle).
        name: Name of the synth (default ``plugin:STEM``).
        timeout_s: Seconds one sound may take before its worker is killed.
        reset: ``"preroll"`` or ``"reload"`` (see the module docstring).
        settle_s: Length of the quiet settling note played before each sound, in seconds.
        pool: Worker processes to render in (default: :func:`~flowsynth.synth.worker.default_pool`).

    Raises:
        ValueError: If there is no plugin at ``path``.
        RenderError: If dawdreamer cannot load it (the message says why).
    """

    def __init__(
        self, path: str | Path, name: str | None = None, timeout_s: float = 60.0, reset: Reset = "preroll",
        settle_s: float = 0.5, pool: WorkerPool | None = None,
    ) -> None:  # fmt: skip
        self.path = _check_path(path)
        if reset not in ("preroll", "reload"):
            raise ValueError(f"reset must be 'preroll' or 'reload', got {reset!r}")
        if not 0 <= settle_s <= 5:
            raise ValueError(f"settle_s must be in [0, 5] seconds, got {settle_s}")
        self.name = name or f"plugin:{self.path.stem}"
        self.timeout_s, self.reset, self.settle_s, self._pool = timeout_s, reset, settle_s, pool
        self.plugin_params = self.call_engine("describe")
        self._params = self._make_params(self.plugin_params)
        super().__init__()

    def _make_params(self, described: list[dict]) -> tuple[Param, ...]:
        """One parameter per plugin parameter (names made unique with their index where needed)."""
        names = [d["name"] or f"param_{d['index']}" for d in described]
        unique = [n if names.count(n) == 1 else f"{n}_{d['index']}" for n, d in zip(names, described, strict=True)]
        return tuple(_param(name, d) for name, d in zip(unique, described, strict=True))

    @property
    def params(self) -> tuple[Param, ...]:
        return self._params

    @property
    def spec(self) -> EngineSpec:
        """What the workers build to render this synth."""
        options = {"path": str(self.path), "reset": self.reset, "settle_s": self.settle_s}
        return EngineSpec("flowsynth.synth.plugin:PluginEngine", options, self.name)

    def to_raw(self, params: Tensor) -> np.ndarray:
        """Maps full normalized vectors ``[batch, n_params]`` to the plugin's raw values (discrete ones snapped)."""
        raw = params.double().clone()
        for i, p in enumerate(self._params):
            if p.discrete and p.max > 0:
                raw[:, i] = p.to_units(raw[:, i]) / p.max
        return raw.numpy()

    def render_full(self, params: Tensor, config: RenderConfig, seed: int, on_error: OnError) -> Tensor:
        if float(config.note) != int(config.note):
            raise ValueError(f"plugins play whole MIDI notes; got note {config.note}")
        return self.render_in_pool(self.to_raw(params), config, seed, on_error)

    def texts(self, params: Tensor) -> dict[str, str]:
        """The plugin's own display text of every parameter for one learned vector ``[num_learned]``."""
        raw = self.to_raw(self.space.expand(params.reshape(1, -1)))[0]
        texts = self.call_engine("texts", raw)
        return dict(zip(self.space.names, texts, strict=True))

    def save_state(self, path: str | Path, params: Tensor | None = None) -> None:
        """Writes the raw value of every parameter (learned ``params`` ``[num_learned]``, default their defaults)."""
        learned = self.space.full_defaults()[[self.space.names.index(n) for n in self.space.learned]]
        vector = learned if params is None else torch.as_tensor(params, dtype=torch.float32)
        raw = self.to_raw(self.space.expand(vector.reshape(1, -1)))[0]
        values = dict(zip(self.space.names, raw.tolist(), strict=True))
        state = {"format": _STATE_FORMAT, "plugin": str(self.path), "raw": values}
        Path(path).write_text(json.dumps(state, indent=1))

    def load_state(self, path: str | Path) -> tuple[PluginSynth, Tensor]:
        """Reads a state file: a copy of this synth with the parameters it does not learn fixed to the
        file's values, and the learned vector ``[num_learned]`` of the file."""
        state = json.loads(Path(path).read_text())
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"{path} is not a flowsynth plugin state file (format {state.get('format')!r})")
        raw = state["raw"]
        missing = [n for n in self.space.names if n not in raw]
        if missing:
            raise ValueError(f"{path} has no value for parameter(s) {', '.join(missing)} of {self.name}")
        fixed = {n: float(raw[n]) for n in self.space.names if n not in self.space.learned}
        vector = torch.tensor([float(raw[n]) for n in self.space.learned], dtype=torch.float32)
        return self.select(self.space.learned, fixed), vector  # type: ignore[return-value]

    def describe(self) -> dict:
        options = {"path": str(self.path), "timeout_s": self.timeout_s, "reset": self.reset, "settle_s": self.settle_s}
        return {"kind": "plugin", "variant": "plugin", **options, **super().describe()}

    @classmethod
    def from_description(cls, description: dict) -> PluginSynth:
        """Rebuilds a synth from :meth:`describe`'s output (the learned subset is the caller's to select)."""
        keys = ("timeout_s", "reset", "settle_s")
        options = {k: description[k] for k in keys if k in description}
        if description.get("variant") == "amsynth":
            from flowsynth.synth.amsynth import AmsynthSynth

            return AmsynthSynth(description["path"], **options)
        return cls(description["path"], name=description.get("name"), **options)


def _check_path(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"no plugin at {str(path)!r}: give the path of a VST2 (.so) or VST3 (.vst3) instrument")
    if path.suffix not in PLUGIN_SUFFIXES:
        raise ValueError(f"{str(path)!r} is not a VST2 (.so) or VST3 (.vst3) plugin")
    return path


def _param(name: str, d: dict) -> Param:
    """The parameter of one plugin parameter description (its raw value is the normalized value)."""
    units, default = str(d.get("label") or ""), min(max(float(d["value"]), 0.0), 1.0)
    steps = int(d.get("numSteps") or 0)
    if (d.get("isDiscrete") or d.get("isBoolean")) and 2 <= steps <= _MAX_STEPS:
        strings = list(d.get("valueStrings") or [])
        choices = tuple(strings) if len(strings) == steps else tuple(str(i) for i in range(steps))
        return Param(name, default=float(round(default * (steps - 1))), units=units, choices=choices)
    return Param(name, 0.0, 1.0, default=default, units=units, description=f"plugin parameter {d['index']}")
