"""Faust programs as synths: any ``.dsp`` with ``freq``, ``gain`` and ``gate`` controls, rendered by dawdreamer.

The parameters are read from the compiled program's user interface: every ``hslider``,
``vslider``, ``nentry`` and ``checkbox`` except the controls flowsynth plays itself:

* ``freq`` (Hz) takes the note's frequency, ``gain`` takes ``velocity / 127``;
* ``gate`` (a ``button``) is 1 while the note is held (``note_s``) and 0 after;
* ``seed`` (an ``nentry``, optional) takes the render seed, so that noise can be seeded.

Ranges become :class:`~flowsynth.synth.params.Param` (``init`` is the default, ``[unit:Hz]`` the
units, ``[scale:log]`` a log range, ``[tooltip:...]`` the description). A ``checkbox``, a
``[style:menu{...}]`` or ``[style:radio{...}]``, and a control with whole steps and at most 32 values
are discrete. Parameters come in the order of the program's user interface (Faust sorts the
widgets of a group by label, unless labels carry an order such as ``[1]``). Programs render in
worker processes (see :mod:`flowsynth.synth.worker`), one voice, mixed down to mono. Shipped
programs live in ``flowsynth/synth/faust/`` (:func:`shipped_faust_synths`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from flowsynth.synth.base import OnError, RenderConfig
from flowsynth.synth.params import Param
from flowsynth.synth.worker import EngineSpec, PooledSynth, WorkerPool

__all__ = ["FaustSynth", "FaustEngine", "shipped_faust_synths", "FAUST_DIR"]

#: Folder of the Faust programs shipped with flowsynth.
FAUST_DIR = Path(__file__).with_name("faust")
#: Controls that flowsynth plays; every other widget is a parameter.
CONTROLS = ("freq", "gain", "gate", "seed")
_SETTABLE = ("hslider", "vslider", "nentry", "checkbox", "button")
_MAX_CHOICES = 32


def shipped_faust_synths() -> dict[str, Path]:
    """The Faust programs shipped with flowsynth, by name (``faust:NAME`` in the registry).

    Example:
        >>> "subtractive" in shipped_faust_synths()
        True
    """
    return {path.stem: path for path in sorted(FAUST_DIR.glob("*.dsp"))}


def _widgets(ui: list[dict]) -> list[dict]:
    """The settable widgets of a Faust UI description, depth first, in declaration order."""
    out: list[dict] = []
    for item in ui:
        if "items" in item:
            out.extend(_widgets(item["items"]))
        elif item["type"] in _SETTABLE:
            out.append(dict(item, meta={k: v for m in item.get("meta", []) for k, v in m.items()}))
    return out


def _learned_widgets(ui: list[dict]) -> list[dict]:
    """The widgets that become parameters: all but the controls and momentary buttons."""
    return [w for w in _widgets(ui) if w["shortname"] not in CONTROLS and w["type"] != "button"]


@dataclass(frozen=True)
class _Control:
    """Where one parameter goes in the program, and the program values of a discrete parameter."""

    address: str
    values: tuple[float, ...] | None = None


def _menu(style: str) -> tuple[tuple[str, ...], tuple[float, ...]] | None:
    """Labels and values of ``menu{'a':0;'b':1}`` or ``radio{...}``, else None.

    Example:
        >>> _menu("menu{'saw':0;'pulse':1}")
        (('saw', 'pulse'), (0.0, 1.0))
    """
    match = re.fullmatch(r"\s*(?:menu|radio)\s*\{(.*)\}\s*", style)
    if not match:
        return None
    pairs = re.findall(r"'([^']*)'\s*:\s*([-+0-9.eE]+)", match.group(1))
    return tuple(p[0] for p in pairs), tuple(float(p[1]) for p in pairs)


def _choices(widget: dict) -> tuple[tuple[str, ...], tuple[float, ...]] | None:
    """Labels and program values of a discrete widget, or None for a continuous one."""
    if widget["type"] == "checkbox":
        return ("off", "on"), (0.0, 1.0)
    menu = _menu(str(widget["meta"].get("style", "")))
    if menu:
        return menu
    lo, hi, step = float(widget["min"]), float(widget["max"]), float(widget["step"])
    count = round((hi - lo) / step) + 1 if step > 0 else 0
    if step >= 1 and step.is_integer() and lo.is_integer() and 2 <= count <= _MAX_CHOICES:
        values = tuple(lo + i * step for i in range(count))
        return tuple(f"{v:g}" for v in values), values
    return None


def _param(widget: dict) -> tuple[Param, _Control]:
    """The parameter of one widget and where its values go."""
    name, meta = widget["shortname"], widget["meta"]
    units, description = str(meta.get("unit", "")), str(meta.get("tooltip", ""))
    choices = _choices(widget)
    if choices:
        labels, values = choices
        init = float(widget.get("init", values[0]))
        default = min(range(len(values)), key=lambda i: abs(values[i] - init))
        param = Param(name, default=float(default), units=units, description=description, choices=labels)
        return param, _Control(widget["address"], values)
    lo, hi = float(widget["min"]), float(widget["max"])
    log = meta.get("scale") == "log" and lo > 0
    param = Param(name, lo, hi, default=float(widget["init"]), units=units, description=description, log=log)
    return param, _Control(widget["address"])


class FaustEngine:
    """Worker side: one compiled Faust program in a dawdreamer render engine, reused for every sound.

    Arguments:
        sample_rate: Render sample rate in Hz.
        code: The Faust program.
        block_size: Render block size in samples.
    """

    def __init__(self, sample_rate: int, code: str, block_size: int = 256) -> None:
        import dawdreamer as daw

        self.sample_rate = sample_rate
        self.engine = daw.RenderEngine(sample_rate, block_size)
        self.processor = self.engine.make_faust_processor("faust")
        self.processor.set_dsp_string(code)
        self.processor.compile()
        if self.processor.get_num_input_channels() > 0:
            raise ValueError("a Faust synth takes no audio input; its process has inputs")
        self.engine.load_graph([(self.processor, [])])
        self.ui = _ui(code)
        by_name = {w["shortname"]: w for w in _widgets(self.ui)}
        missing = [c for c in CONTROLS[:3] if c not in by_name]
        if missing:
            raise ValueError(f"a Faust synth needs controls named {', '.join(CONTROLS[:3])}; missing: {missing}")
        self.controls = {c: by_name[c] for c in CONTROLS if c in by_name}
        self.addresses = [w["address"] for w in _learned_widgets(self.ui)]

    def describe(self) -> list[dict]:
        """The program's user interface, as Faust's JSON describes it."""
        return self.ui

    def render(self, values: np.ndarray, config: dict, seed: int) -> np.ndarray:
        """Plays one note with the parameters ``values`` (program units, in :attr:`addresses` order)."""
        for address, value in zip(self.addresses, values, strict=True):
            self.processor.set_parameter(address, float(value))
        self.processor.set_parameter(self.controls["freq"]["address"], 440.0 * 2.0 ** ((config["note"] - 69) / 12))
        self.processor.set_parameter(self.controls["gain"]["address"], config["velocity"] / 127.0)
        if "seed" in self.controls:
            self.processor.set_parameter(self.controls["seed"]["address"], float(seed % 16777216))
        num_samples = round(config["render_s"] * self.sample_rate)
        gate = np.zeros(num_samples, dtype=np.float32)
        gate[: round(config["note_s"] * self.sample_rate)] = 1.0
        self.processor.set_automation(self.controls["gate"]["address"], gate)
        self.engine.render(num_samples / self.sample_rate)
        return self.engine.get_audio().mean(axis=0)


def _ui(code: str) -> list[dict]:
    """Faust's JSON description of a program's user interface (compiled with the bundled libraries)."""
    import json
    import tempfile

    import dawdreamer
    from dawdreamer.faust import FaustContext
    from dawdreamer.faust.box import boxFromDSP, boxToSource

    libraries = str(Path(dawdreamer.__file__).with_name("faustlibraries"))
    with tempfile.TemporaryDirectory() as folder, FaustContext():
        boxToSource(boxFromDSP(code, ["-I", libraries]), "cpp", "dsp", ["-json", "-O", folder])
        (path,) = Path(folder).glob("*.json")
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))["ui"]


class FaustSynth(PooledSynth):
    """A Faust program played as a synth (see the module docstring for the controls it needs).

    Arguments:
        dsp: Path of a ``.dsp`` file, or the name of a shipped program (``"subtractive"``).
        name: Name of the synth (default ``faust:STEM``).
        timeout_s: Seconds one sound may take before its worker is killed.
        pool: Worker processes to render in (default: :func:`~flowsynth.synth.worker.default_pool`).

    Example::

        synth = FaustSynth("subtractive").select(["cutoff", "resonance"])
        audio = synth.render(torch.full((2, 2), 0.5))  # [2, 88200]
    """

    def __init__(
        self, dsp: str | Path, name: str | None = None, timeout_s: float = 60.0, pool: WorkerPool | None = None
    ) -> None:
        self.path, self.shipped = _locate(dsp)
        self.code = self.path.read_text(encoding="utf-8")
        self.name = name or f"faust:{self.shipped or self.path.stem}"
        self.timeout_s, self._pool = timeout_s, pool
        ui = self.call_engine("describe")
        built = [_param(w) for w in _learned_widgets(ui)]
        self._params = tuple(p for p, _ in built)
        self._controls = tuple(c for _, c in built)
        super().__init__()

    @property
    def params(self) -> tuple[Param, ...]:
        return self._params

    @property
    def spec(self) -> EngineSpec:
        """What the workers build to render this synth."""
        return EngineSpec(f"{__name__}:FaustEngine", {"code": self.code}, self.name)

    def render_full(self, params: Tensor, config: RenderConfig, seed: int, on_error: OnError) -> Tensor:
        return self.render_in_pool(self.to_program_values(params), config, seed, on_error)

    def to_program_values(self, params: Tensor) -> np.ndarray:
        """Maps full normalized vectors ``[batch, n_params]`` to the values the program gets."""
        columns = []
        for i, (param, control) in enumerate(zip(self._params, self._controls, strict=True)):
            units = param.to_units(params[:, i].double()).numpy()
            columns.append(np.asarray(control.values)[units.astype(int)] if control.values else units)
        return np.stack(columns, axis=1) if columns else np.zeros((len(params), 0))

    def describe(self) -> dict:
        source: dict[str, Any] = {"shipped": self.shipped} if self.shipped else {"dsp": str(self.path)}
        return {"kind": "faust", **source, "timeout_s": self.timeout_s, **super().describe()}

    @classmethod
    def from_description(cls, description: dict) -> FaustSynth:
        """Rebuilds a synth from :meth:`describe`'s output (the learned subset is the caller's to select)."""
        dsp = description.get("shipped") or description.get("dsp")
        if not dsp:
            raise ValueError("a Faust synth description needs 'shipped' (a shipped program) or 'dsp' (a path)")
        synth = cls(dsp, name=description.get("name"), timeout_s=description.get("timeout_s", 60.0))
        stored = [p["name"] for p in description.get("params", [])]
        if stored and stored != list(synth.space.names):
            raise ValueError(f"{synth.path} no longer has the parameters it was described with: {stored}")
        return synth


def _locate(dsp: str | Path) -> tuple[Path, str | None]:
    """The path of a program, and its shipped name if it is one of the shipped programs."""
    shipped = shipped_faust_synths()
    if isinstance(dsp, str) and dsp in shipped:
        return shipped[dsp], dsp
    path = Path(dsp).expanduser()
    if not path.is_file():
        raise ValueError(f"no Faust program at {dsp!r}; give a .dsp file or a shipped name: {', '.join(shipped)}")
    name = path.stem if path.resolve() == shipped.get(path.stem, Path()).resolve() else None
    return path, name
