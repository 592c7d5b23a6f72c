"""Synthesizers behind one interface: the built-in torch synth, Faust programs and plugins.

Synths are named: ``builtin``, ``builtin-16``, ``builtin-32``, ``faust:NAME`` (a
shipped Faust synth) or ``faust:PATH.dsp``, ``amsynth``, ``amsynth-16``,
``amsynth-32`` and ``plugin:PATH`` (any VST2/VST3 instrument).
"""

from __future__ import annotations

from collections.abc import Callable

from flowsynth.synth.base import RenderConfig, Synth
from flowsynth.synth.builtin import BUILTIN_16, BUILTIN_32, BuiltinSynth
from flowsynth.synth.params import Param, ParamSpace

__all__ = [
    "Param",
    "ParamSpace",
    "RenderConfig",
    "Synth",
    "BuiltinSynth",
    "available_synths",
    "from_description",
    "get_synth",
]


def _builtin(learned: tuple[str, ...] | None) -> Callable[[], Synth]:
    def make() -> Synth:
        synth = BuiltinSynth()
        return synth.select(learned) if learned else synth

    return make


def _amsynth(count: int | None) -> Callable[[], Synth]:
    def make() -> Synth:
        from flowsynth.synth.amsynth import amsynth

        return amsynth(count)

    return make


_NAMED: dict[str, Callable[[], Synth]] = {
    "builtin": _builtin(None),
    "builtin-16": _builtin(BUILTIN_16),
    "builtin-32": _builtin(BUILTIN_32),
    "amsynth": _amsynth(None),
    "amsynth-16": _amsynth(16),
    "amsynth-32": _amsynth(32),
}


def _faust(source: str) -> Callable[[], Synth]:
    def make() -> Synth:
        from flowsynth.synth.faust import FaustSynth, shipped_faust_synths

        return FaustSynth(shipped_faust_synths().get(source, source))

    return make


def available_synths() -> list[str]:
    """Names of the synths :func:`get_synth` knows without a path."""
    from flowsynth.synth.faust import shipped_faust_synths

    return [*_NAMED, *(f"faust:{name}" for name in shipped_faust_synths())]


def get_synth(name: str) -> Synth:
    """Returns the synth called ``name`` (see the module docstring for the names).

    Example:
        >>> get_synth("builtin-16").num_learned
        16
    """
    if name in _NAMED:
        return _NAMED[name]()
    if name.startswith("faust:"):
        return _faust(name.removeprefix("faust:"))()
    if name.startswith("plugin:"):
        from flowsynth.synth.plugin import PluginSynth

        return PluginSynth(name.removeprefix("plugin:"))
    raise ValueError(f"unknown synth {name!r}; known: {', '.join(_NAMED)}, faust:NAME, faust:PATH.dsp, plugin:PATH")


def from_description(description: dict) -> Synth:
    """Rebuilds a synth from :meth:`Synth.describe`'s output (as stored in datasets and checkpoints)."""
    kind = description.get("kind", "builtin")
    if kind == "builtin":
        synth: Synth = BuiltinSynth(**description.get("options", {}))
    elif kind == "faust":
        from flowsynth.synth.faust import FaustSynth

        synth = FaustSynth.from_description(description)
    elif kind == "plugin":
        from flowsynth.synth.plugin import PluginSynth

        synth = PluginSynth.from_description(description)
    else:
        raise ValueError(f"unknown synth kind {kind!r}; known: builtin, faust, plugin")
    return synth.select(description["learned"], description.get("fixed"))
