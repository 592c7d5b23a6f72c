"""MIDI control (mido + python-rtmidi): CC numbers move knobs, notes play the current sound.

Default map (:data:`DEFAULT_CC_MAP`): CC 21-28 turn macro knobs 0-7 (the first bank of knobs on most
controllers), CC 41-46 the semantic knobs 0-5 and the mod wheel (CC 1) the position on the current
interpolation path. A CC value 0 is knob -1, 64 is 0 and 127 is +1. Learn mode: after
:meth:`MidiControl.learn` (``"macro"``, 3), the next CC received is mapped to macro knob 3 (and
unmapped from anything else).

Ports: a new port named ``flowsynth`` that other programs connect to (``virtual``), or a connection to
an existing source. ``api="jack"`` uses JACK MIDI (rtmidi's JACK backend), the default is the
system's (ALSA on Linux). Messages arrive on rtmidi's thread; closing a :class:`MidiInput` waits for the
message being applied and drops any later one before it closes the port (closing a JACK port while its
callback ran Python code could abort the whole process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from flowsynth.control import Instrument
from flowsynth.serve.osc import NotePlayer

__all__ = ["DEFAULT_CC_MAP", "KINDS", "MidiControl", "MidiInput", "cc_to_knob"]

#: What a CC can drive.
KINDS = ("macro", "semantic", "morph")
#: CC number -> (kind, index).
DEFAULT_CC_MAP: dict[int, tuple[str, int]] = {
    **{21 + i: ("macro", i) for i in range(8)},
    **{41 + i: ("semantic", i) for i in range(6)},
    1: ("morph", 0),
}


def cc_to_knob(value: int) -> float:
    """A CC value (0-127) as a knob value in [-1, 1], with 64 at the centre.

    >>> [cc_to_knob(v) for v in (0, 64, 127)]
    [-1.0, 0.0, 1.0]
    """
    value = min(max(int(value), 0), 127)
    return (value - 64) / 64.0 if value <= 64 else (value - 64) / 63.0


class MidiInput:
    """A mido input port whose :meth:`close` waits for the message being handled and drops later ones.

    Arguments:
        open_port: Opens the port with the given callback (e.g. ``lambda cb: backend.open_input(name,
            callback=cb)``).
        handler: Called with each message, on rtmidi's thread.
    """

    def __init__(self, open_port: Callable[[Callable[[Any], None]], Any], handler: Callable[[Any], None]) -> None:
        self._handler, self._gate, self._closing = handler, threading.Lock(), False
        self.port = open_port(self._receive)

    @property
    def name(self) -> str:
        return str(self.port.name)

    def _receive(self, message: Any) -> None:
        with self._gate:
            if not self._closing:
                self._handler(message)

    def close(self) -> None:
        """Waits for the message being handled, ignores later ones, closes the port."""
        with self._gate:
            self._closing = True
        self.port.close()


class MidiControl:
    """Applies MIDI messages to an instrument (see the module docstring).

    Arguments:
        instrument: The instrument.
        player: Plays the notes (None: notes are ignored).
        cc_map: CC number -> ``(kind, index)`` (None: :data:`DEFAULT_CC_MAP`).
        channel: Only this channel (0-15); None: all.
    """

    def __init__(
        self,
        instrument: Instrument,
        player: NotePlayer | None = None,
        cc_map: Mapping[int, tuple[str, int]] | None = None,
        channel: int | None = None,
    ) -> None:
        self.instrument, self.player, self.channel = instrument, player, channel
        self.cc_map: dict[int, tuple[str, int]] = {}
        for cc, target in (DEFAULT_CC_MAP if cc_map is None else cc_map).items():
            self.assign(cc, *target)
        self.learning: tuple[str, int] | None = None
        self.handled = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._port: MidiInput | None = None

    def assign(self, cc: int, kind: str, index: int) -> None:
        """Maps CC ``cc`` to knob ``index`` of ``kind``."""
        if not 0 <= int(cc) <= 127:
            raise ValueError(f"CC numbers are 0-127, got {cc}")
        if kind not in KINDS or int(index) < 0:
            raise ValueError(f"a CC drives one of {', '.join(KINDS)} with an index >= 0, got {kind!r} {index}")
        self.cc_map[int(cc)] = (kind, int(index))

    def learn(self, kind: str, index: int) -> None:
        """Maps the next CC received to knob ``index`` of ``kind``."""
        if kind not in KINDS or int(index) < 0:
            raise ValueError(f"learn takes one of {', '.join(KINDS)} and an index >= 0, got {kind!r} {index}")
        with self._lock:
            self.learning = (kind, int(index))

    def describe(self) -> dict[str, Any]:
        """The map and the learn state, JSON-ready."""
        with self._lock:
            learning = list(self.learning) if self.learning else None
            return {"cc_map": {str(cc): list(t) for cc, t in sorted(self.cc_map.items())}, "learning": learning}

    def handle(self, message: Any) -> None:
        """Applies one mido message; mistakes are counted in :attr:`errors`, never raised."""
        try:
            self._handle(message)
            self.handled += 1
        except (ValueError, TypeError) as error:
            self.errors.append(str(error))
            del self.errors[:-100]

    def _handle(self, message: Any) -> None:
        if self.channel is not None and getattr(message, "channel", None) != self.channel:
            return
        if message.type == "control_change":
            self._control(message.control, message.value)
        elif message.type == "note_on" and message.velocity > 0 and self.player is not None:
            self.player.note_on(message.note, message.velocity)
        elif message.type in ("note_off", "note_on") and self.player is not None:
            self.player.note_off(message.note)

    def _control(self, cc: int, value: int) -> None:
        with self._lock:
            if self.learning is not None:
                for other in [c for c, t in self.cc_map.items() if t == self.learning]:
                    del self.cc_map[other]
                self.cc_map[cc], self.learning = self.learning, None
            target = self.cc_map.get(cc)
        if target is None:
            return
        kind, index = target
        if kind == "macro":
            self.instrument.set_macro(index, cc_to_knob(value))
        elif kind == "semantic":
            self.instrument.set_semantic({index: cc_to_knob(value)})
        else:
            self.instrument.morph(value / 127.0)

    # -- ports --------------------------------------------------------------------------------

    def open(self, port: str | None = None, api: str | None = None, name: str = "flowsynth") -> str:
        """Starts listening: on a new port ``name`` (``port`` None) or on the existing source ``port``.

        Returns:
            The port's name.
        """
        import mido

        if api not in (None, "alsa", "jack"):
            raise ValueError(f"MIDI api must be 'alsa' or 'jack', got {api!r}")
        backend = mido.Backend("mido.backends.rtmidi" + {"jack": "/UNIX_JACK", "alsa": "/LINUX_ALSA", None: ""}[api])
        try:
            if port is None:
                self._port = MidiInput(lambda cb: backend.open_input(name, virtual=True, callback=cb), self.handle)
            else:
                self._port = MidiInput(lambda cb: backend.open_input(port, callback=cb), self.handle)
        except (OSError, SystemError) as error:  # rtmidi reports a missing MIDI system this way
            known = ", ".join(backend.get_input_names()) or "none"
            raise ValueError(f"cannot open MIDI input {port or name!r}: {error}; sources: {known}") from None
        return self._port.name

    def close(self) -> None:
        """Stops listening: waits for the message being applied, ignores later ones, closes the port."""
        port, self._port = self._port, None
        if port is not None:
            port.close()
