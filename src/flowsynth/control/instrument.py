"""The instrument: one current sound (a latent) moved by macro and semantic knobs, presets, sounds and paths.

Every interface (OSC, MIDI, web, CLI) drives one :class:`Instrument`. It is thread-safe (one lock),
keeps the current latent and its parameters, and tells subscribers after each change (the audio
engine re-renders, the web page refreshes). Knob moves cost one pass through ``latent_to_params``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from flowsynth.control.interpolate import InterpolationPath, latent_path_between
from flowsynth.control.macros import MacroSet, check_knob
from flowsynth.control.map import PresetBank, PresetMap
from flowsynth.control.semantic import SemanticKnobs
from flowsynth.control.space import SoundSpace
from flowsynth.synth.presets import preset_to_json, read_preset_file

__all__ = ["Instrument"]

#: Called with the new state version after every change (from the thread that made the change).
Listener = Callable[[int], None]
_MAX_PATH_STEPS = 257


class _Path(NamedTuple):
    """The instrument's interpolation path: its latents ``[steps, latent_size]`` (a polyline), ends, method."""

    latents: Tensor
    start: str
    end: str
    method: str


class Instrument:
    """A playable sound over a model's latent space.

    Arguments:
        space: The model and synth.
        macros: The macro knobs.
        semantic: The semantic knobs.
        preset_map: The preset bank on its map (None: no presets to load).
        freeze: Freeze mode (see :mod:`flowsynth.control.macros`).
    """

    def __init__(
        self,
        space: SoundSpace,
        macros: MacroSet,
        semantic: SemanticKnobs,
        preset_map: PresetMap | None = None,
        freeze: bool = True,
    ) -> None:
        if macros.latent_size != space.latent_size:
            raise ValueError(
                f"macros are for a latent of size {macros.latent_size}, the model's is {space.latent_size}"
            )
        self.space, self.macros, self.semantic, self.map = space, macros, semantic, preset_map
        self.freeze = bool(freeze)
        #: How dropped sounds are matched (None: 16 posterior candidates, no refinement).
        self.match_settings: Any = None
        #: Torch threads in every thread that moves the instrument (None: torch's own setting). OpenMP's
        #: thread count belongs to each thread: a server thread would otherwise start with the default.
        self.torch_threads: int | None = None
        self._thread = threading.local()
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._path: _Path | None = None
        self.version = 0
        self._set(macros.decode({}), "centre")

    # -- reading ------------------------------------------------------------------------------

    @property
    def bank(self) -> PresetBank | None:
        """The presets that can be loaded."""
        return self.map.bank if self.map else None

    @property
    def latent(self) -> Tensor:
        """The current latent ``[latent_size]`` (a copy)."""
        with self._lock:
            return self._z.clone()

    @property
    def params(self) -> Tensor:
        """The current parameters ``[num_params]`` in [0, 1] (a copy)."""
        with self._lock:
            return self._params.clone()

    @property
    def name(self) -> str:
        """Where the current sound comes from (a preset's name, ``"centre"``, a file's name, ...)."""
        with self._lock:
            return self._name

    def prepare_thread(self) -> None:
        """Gives the calling thread :attr:`torch_threads` torch threads (once per thread)."""
        if self.torch_threads and getattr(self._thread, "threads", None) != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
            self._thread.threads = self.torch_threads

    def knobs(self) -> tuple[list[float], list[float], list[float]]:
        """The parameters, the macro knob values and the semantic knob values of the current sound."""
        with self._lock:
            z, params = self._z, self._params
            semantic = self.semantic.values(z[None], params[None])[0].tolist() if len(self.semantic) else []
            return params.tolist(), self.macros.knob_values(z), semantic

    def state(self) -> dict[str, Any]:
        """Everything an interface shows, JSON-ready."""
        with self._lock:
            z, params = self._z, self._params
            knobs = self.macros.knob_values(z)
            semantic = self.semantic.values(z[None], params[None])[0].tolist() if len(self.semantic) else []
            xy = self.map.project(z[None])[0].tolist() if self.map else None
            return {
                "version": self.version,
                "preset": self._name,
                "freeze": self.freeze,
                "latent": [round(float(v), 6) for v in z],
                "params": [round(float(v), 6) for v in params],
                "param_names": list(self.space.synth.space.learned),
                "macros": [
                    {
                        "index": i,
                        "dim": m.dim,
                        "name": m.name,
                        "label": m.label,
                        "value": round(knobs[i], 6),
                        "visible": i < self.macros.visible,
                    }
                    for i, m in enumerate(self.macros.macros)
                ],
                "semantic": [
                    {
                        "index": i,
                        "name": k.name,
                        "low": k.low,
                        "high": k.high,
                        "kind": k.kind,
                        "value": round(semantic[i], 6),
                    }
                    for i, k in enumerate(self.semantic.knobs)
                ],
                "map_xy": xy,
                "path": None
                if self._path is None
                else {"from": self._path.start, "to": self._path.end, "method": self._path.method},
            }

    def preset_json(self) -> dict[str, Any]:
        """The current sound as a preset file (parameter values in units and normalized)."""
        with self._lock:
            data = preset_to_json(self.space.synth, self._params, self._name)
            data["latent"] = [float(v) for v in self._z]
            return data

    def render(self, note: float | None = None) -> Tensor:
        """The current sound ``[samples]`` under the model's render conditions (at ``note`` if given)."""
        self.prepare_thread()
        return torch.nan_to_num(self.space.render(self.params[None], note=note)[0])

    # -- moving -------------------------------------------------------------------------------

    def set_macros(self, values: Mapping[int, float]) -> Tensor:
        """Sets macro knobs ``{index: value in [-1, 1]}``; returns the new parameters."""
        with self._lock:
            return self._set(self.macros.decode(values, self._z, self.freeze))

    def set_macro(self, index: int, value: float) -> Tensor:
        """Sets one macro knob; returns the new parameters."""
        return self.set_macros({index: value})

    def set_semantic(self, values: Mapping[int, float]) -> Tensor:
        """Sets semantic knobs ``{index: value in [-1, 1]}``; returns the new parameters."""
        self.prepare_thread()
        with self._lock:
            base = self._z if self.freeze else self.macros.decode({}, self._z, freeze=False)
            return self._set(self.semantic.apply(base[None], values)[0])

    def set_latent(self, z: Tensor, name: str = "latent") -> Tensor:
        """Moves to latent ``z [latent_size]``; returns the new parameters."""
        z = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
        if len(z) != self.space.latent_size or not torch.isfinite(z).all():
            raise ValueError(f"a latent must be {self.space.latent_size} finite numbers, got {len(z)} values")
        with self._lock:
            return self._set(z, name)

    def set_freeze(self, freeze: bool) -> None:
        """Turns freeze mode on or off."""
        with self._lock:
            self.freeze = bool(freeze)
            self._changed()

    def load_params(self, params: Tensor, name: str = "preset") -> Tensor:
        """Moves to the latent of parameters ``[num_params]``; returns the parameters it decodes to."""
        params = torch.as_tensor(params, dtype=torch.float32).reshape(1, -1)
        if params.shape[1] != self.space.num_params or not torch.isfinite(params).all():
            raise ValueError(f"a preset must have {self.space.num_params} finite parameters, got {params.shape[1]}")
        if params.min() < 0 or params.max() > 1:
            raise ValueError("preset parameters must be normalized to [0, 1]")
        self.prepare_thread()
        return self.set_latent(self.space.to_latent(params)[0], name)

    def load_preset(self, key: str | int) -> str:
        """Loads a preset of the bank by index or name; returns its name."""
        bank = self._require_bank()
        row = bank.find(key)
        self.load_params(bank.params[row], bank.names[row])
        return bank.names[row]

    def resolve(self, spec: str | int) -> tuple[Tensor, str]:
        """Parameters ``[num_params]`` and a name for a preset given as a bank index or name, a JSON preset
        file, or a sound file (matched with :meth:`match_params`)."""
        path = Path(str(spec))
        if isinstance(spec, str) and path.is_file():
            if path.suffix.lower() == ".json":
                preset = read_preset_file(self.space.synth, path)[0]
                return preset.vector.float(), preset.name or path.stem
            return self.match_params(path), path.stem
        bank = self._require_bank()
        row = bank.find(spec)
        return bank.params[row], bank.names[row]

    def match_params(self, path: str | os.PathLike[str]) -> Tensor:
        """The parameters ``[num_params]`` whose sound is closest to a sound file (:func:`flowsynth.matching.match`
        with the model, its synth and :attr:`match_settings`)."""
        from flowsynth.matching import MatchSettings, match

        self.prepare_thread()
        settings = self.match_settings or MatchSettings(candidates=16, refine_steps=0, seed=self.space.seed)
        result = match(Path(path), self.space.model, self.space.synth, settings, config=self.space.config)
        return result.params.float()

    def match_sound(self, path: str | os.PathLike[str], name: str | None = None) -> Tensor:
        """Moves to the preset that sounds closest to a sound file; returns the new parameters."""
        return self.load_params(self.match_params(path), name or Path(path).stem)

    def encode_sound(self, audio: Tensor, sample_rate: int, name: str = "sound") -> Tensor:
        """Moves to the latent of a sound (the model's posterior mean); returns the new parameters."""
        self.prepare_thread()
        return self.set_latent(self.space.encode_audio(audio, sample_rate)[0], name)

    def set_path(self, start: str | int, end: str | int, steps: int = 9, method: str = "straight") -> InterpolationPath:
        """Defines the interpolation path between two presets of the bank; returns it sampled at ``steps``.

        ``method`` is :data:`~flowsynth.control.interpolate.PATH_METHODS`' ``"straight"`` (at once) or
        ``"geodesic"`` (bent where the model hears uneven change: a few seconds for the shipped models).
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or not 3 <= steps <= _MAX_PATH_STEPS:
            raise ValueError(f"steps must be an integer in [3, {_MAX_PATH_STEPS}], got {steps!r}")
        bank = self._require_bank()
        rows = [bank.find(start), bank.find(end)]
        self.prepare_thread()
        z = self.space.to_latent(bank.params[rows])
        path = latent_path_between(self.space, z[0], z[1], steps, method)
        assert path.latents is not None
        with self._lock:
            self._path = _Path(path.latents, bank.names[rows[0]], bank.names[rows[1]], method)
            self._changed()
        return path

    def morph(self, t: float) -> Tensor:
        """Moves to position ``t`` in [0, 1] on the current path (between its steps, along the straight
        latent segment joining them); returns the new parameters."""
        t = (check_knob(2.0 * float(t) - 1.0, "path position (in [0, 1])") + 1.0) / 2.0
        with self._lock:
            if self._path is None:
                raise ValueError("no interpolation path yet: define one between two presets first")
            latents = self._path.latents
            u = t * (len(latents) - 1)
            i = min(int(u), len(latents) - 2)
            z = latents[i] + (u - i) * (latents[i + 1] - latents[i])
            return self._set(z, f"{self._path.start} -> {self._path.end} @ {t:.3f}")

    def subscribe(self, listener: Listener) -> None:
        """Calls ``listener(version)`` after every change."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # -- inside -------------------------------------------------------------------------------

    def _require_bank(self) -> PresetBank:
        if self.map is None:
            raise ValueError("this instrument has no preset bank: start it with a dataset or presets")
        return self.map.bank

    def _set(self, z: Tensor, name: str | None = None) -> Tensor:
        self.prepare_thread()
        params = self.space.to_params(z.reshape(1, -1))[0]
        with self._lock:
            self._z, self._params = z.reshape(-1).clone(), params
            if name is not None:
                self._name = name
            self._changed()
            return params.clone()

    def _changed(self) -> None:
        self.version += 1
        for listener in list(self._listeners):
            listener(self.version)
