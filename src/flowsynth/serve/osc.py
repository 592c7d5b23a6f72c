"""The OSC face of the instrument: a versioned address space over UDP (python-osc's message format).

Every address starts with :data:`PREFIX` (``/flowsynth/v1``); replies go back to the sender (its host
and port, or the port it chose with ``/reply_to``) under the same prefix. Requests and replies:

====================================  ===============================================================
request (arguments)                   replies
====================================  ===============================================================
``/decode f...``                      macro knobs 0.. in order, each in [-1, 1] -> ``/params``, ``/knobs``
``/macro i f``                        one macro knob -> ``/params``, ``/knobs``
``/semantic i f``                     one semantic knob -> ``/params``, ``/knobs``
``/latent f...``                      the whole latent -> ``/params``, ``/knobs``
``/encode s``                         a sound file's path, encoded by the model (its posterior mean; slow
                                      request) -> ``/params``, ``/latent``, ``/knobs``
``/match s``                          a sound file's path, matched (flowsynth.matching: candidates rendered
                                      and compared, about a second; slow request) -> ``/params``,
                                      ``/latent``, ``/knobs``
``/load_preset i|s``                  a bank preset by index or name -> ``/preset s``, ``/params``, ``/knobs``
``/interpolate i|s i|s [i [s]]``      a path between two presets (steps, default 9; ``straight``, the
                                      default, or ``geodesic``: a few seconds, slow request) ->
                                      ``/path/begin i``, one ``/path/step i f...`` (params) per step,
                                      ``/path/end``
``/morph f``                          position in [0, 1] on that path -> ``/params``, ``/knobs``
``/freeze i``                         freeze mode on (1) or off (0) -> ``/freeze i``
``/note i [i]``                       play a note (velocity) when audio is on -> nothing
``/note_off i``                       release it -> nothing
``/get_state``                        ``/state s`` (JSON), ``/params``, ``/latent``, ``/knobs``
``/reply_to i``                       replies to this port of the sender's host -> ``/reply_to i``
``/ping``                             ``/pong s`` (the address space version)
====================================  ===============================================================

``/params`` carries the normalized parameters in the synth's order, ``/knobs`` the macro knob values
(all of them, in knob order) then the semantic ones. A request that fails (unknown address, wrong
arguments, a value out of range, a missing file, an undecodable packet) is answered with
``/error s s`` (the request's address, or ``""``, and the reason) and the server goes on. Bundles are
run at once, whatever their time tag.

Slow requests (``/encode``, ``/match``, a geodesic ``/interpolate``) run one at a time, in order of
arrival, on a worker thread: their replies (or ``/error``) are sent when each is done, while every other
request is answered at once. Until a new path is done, ``/morph`` moves on the previous one. A straight
``/interpolate`` waits its turn behind slow requests (paths are set in the order they were asked for) and
is answered at once otherwise. At most :data:`MAX_WAITING` slow requests wait; one more gets ``/error``.
"""

from __future__ import annotations

import json
import math
import queue
import socket
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from flowsynth.audio import load_audio
from flowsynth.control import Instrument
from flowsynth.control.interpolate import PATH_METHODS

__all__ = ["ADDRESS_SPACE_VERSION", "PREFIX", "NotePlayer", "OscServer"]

ADDRESS_SPACE_VERSION = "1"
PREFIX = f"/flowsynth/v{ADDRESS_SPACE_VERSION}"
#: Largest number of arguments a request may carry.
MAX_ARGS = 512
MAX_STRING = 4096
#: Largest number of slow requests waiting for the worker (not counting the one it runs).
MAX_WAITING = 16

Reply = tuple[str, list[Any]]
#: A slow request: its address, the work that makes its replies, and its sender.
Job = tuple[str, Callable[[], list[Reply]], tuple[str, int]]


class NotePlayer(Protocol):
    """What plays notes (the audio engine)."""

    def note_on(self, note: int, velocity: int = 100) -> None: ...

    def note_off(self, note: int) -> None: ...


class OscServer:
    """Serves :data:`PREFIX` addresses for an instrument on a UDP port (see the module docstring).

    Arguments:
        instrument: The instrument.
        host: Interface to bind (``127.0.0.1``: this machine only).
        port: UDP port (0: any free port; see :attr:`port`).
        player: Plays ``/note`` (None: audio is off and notes are answered with an error).
    """

    def __init__(
        self, instrument: Instrument, host: str = "127.0.0.1", port: int = 0, player: NotePlayer | None = None
    ) -> None:
        self.instrument, self.player = instrument, player
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((host, port))
        self.socket.settimeout(0.1)
        self.port = int(self.socket.getsockname()[1])
        self.errors = 0
        self._reply_ports: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="flowsynth-osc", daemon=True)
        self._jobs: queue.Queue[Job] = queue.Queue(MAX_WAITING)
        self._worker = threading.Thread(target=self._work, name="flowsynth-osc-slow", daemon=True)
        self._handlers: dict[str, Callable[[list[Any], tuple[str, int]], list[Reply]]] = {
            "/decode": self._decode,
            "/macro": self._macro,
            "/semantic": self._semantic,
            "/latent": self._latent,
            "/encode": self._encode,
            "/match": self._match,
            "/load_preset": self._load_preset,
            "/interpolate": self._interpolate,
            "/morph": self._morph,
            "/freeze": self._freeze,
            "/note": self._note,
            "/note_off": self._note_off,
            "/get_state": self._get_state,
            "/reply_to": self._reply_to,
            "/ping": lambda args, sender: [("/pong", [ADDRESS_SPACE_VERSION])],
        }

    def start(self) -> OscServer:
        self._thread.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stops serving: slow requests still waiting are dropped, the one running has 5 s to finish."""
        self._stop.set()
        for thread in (self._thread, self._worker):
            if thread.is_alive():
                thread.join(timeout=5.0)
        self.socket.close()

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop -----------------------------------------------------------------------------

    def _serve(self) -> None:
        self.instrument.prepare_thread()
        while not self._stop.is_set():
            try:
                data, sender = self.socket.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.handle_packet(data, sender)

    def _work(self) -> None:
        self.instrument.prepare_thread()
        while not self._stop.is_set():
            try:
                address, work, sender = self._jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                if not self._stop.is_set():
                    self._answer(address, work, sender)
            finally:
                self._jobs.task_done()

    def handle_packet(self, data: bytes, sender: tuple[str, int]) -> None:
        """Runs every message of one packet and sends the replies; never raises."""
        from pythonosc.osc_packet import OscPacket

        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as error:  # any undecodable datagram, however malformed
            self._send_error("", f"undecodable OSC packet ({type(error).__name__}: {str(error)[:200]})", sender)
            return
        for message in messages:
            self._answer(message.address, partial(self.handle, message.address, list(message.params), sender), sender)

    def _answer(self, address: str, work: Callable[[], list[Reply]], sender: tuple[str, int]) -> None:
        """Sends the replies of ``work()``, or ``/error`` if it raises; never raises."""
        try:
            replies = work()
        except Exception as error:  # a failing request is answered, never fatal
            self._send_error(address, _reason(error), sender)
            return
        for reply, args in replies:
            self._send(reply, args, sender)

    def handle(self, address: str, args: list[Any], sender: tuple[str, int] = ("127.0.0.1", 0)) -> list[Reply]:
        """The replies to one request (raises ``ValueError`` for a bad one); a slow request is queued for
        the worker, which sends its replies when it is done, and has none here."""
        if not address.startswith(PREFIX + "/"):
            raise ValueError(f"unknown address {address[:200]!r}: addresses start with {PREFIX}/ (try {PREFIX}/ping)")
        handler = self._handlers.get(address[len(PREFIX) :])
        if handler is None:
            raise ValueError(
                f"unknown address {address[:200]!r}; known: {', '.join(PREFIX + a for a in self._handlers)}"
            )
        if len(args) > MAX_ARGS:
            raise ValueError(f"too many arguments ({len(args)}); at most {MAX_ARGS}")
        return handler(args, sender)

    def _later(self, address: str, work: Callable[[], list[Reply]], sender: tuple[str, int]) -> list[Reply]:
        """Queues a slow request for the worker; no replies now."""
        try:
            self._jobs.put_nowait((PREFIX + address, work, sender))
        except queue.Full:
            raise ValueError(
                f"{address}: {MAX_WAITING} slow requests are already waiting; send it again when they are answered"
            ) from None
        return []

    # -- replies ------------------------------------------------------------------------------

    def _target(self, sender: tuple[str, int]) -> tuple[str, int]:
        return sender[0], self._reply_ports.get(sender[0], sender[1])

    def _send(self, address: str, args: list[Any], sender: tuple[str, int]) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        builder = OscMessageBuilder(PREFIX + address)
        for arg in args:
            builder.add_arg(arg)
        try:
            self.socket.sendto(builder.build().dgram, self._target(sender))
        except OSError:  # the sender went away: nothing to do
            pass

    def _send_error(self, address: str, reason: str, sender: tuple[str, int]) -> None:
        self.errors += 1
        self._send("/error", [address[:MAX_STRING], reason[:MAX_STRING]], sender)

    def _params_replies(self) -> list[Reply]:
        params, macros, semantic = self.instrument.knobs()
        return [("/params", [float(v) for v in params]), ("/knobs", [float(v) for v in macros + semantic])]

    # -- handlers -----------------------------------------------------------------------------

    def _decode(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        if not args or len(args) > len(self.instrument.macros.macros):
            raise ValueError(f"/decode takes 1 to {len(self.instrument.macros.macros)} knob values in [-1, 1]")
        self.instrument.set_macros({i: _number(v, f"knob {i}") for i, v in enumerate(args)})
        return self._params_replies()

    def _macro(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        index, value = _index_value(args, "/macro")
        self.instrument.set_macro(index, value)
        return self._params_replies()

    def _semantic(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        index, value = _index_value(args, "/semantic")
        self.instrument.set_semantic({index: value})
        return self._params_replies()

    def _latent(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        size = self.instrument.space.latent_size
        if len(args) != size:
            raise ValueError(f"/latent takes {size} numbers, got {len(args)}")
        self.instrument.set_latent([_number(v, "latent value", bound=1e3) for v in args])  # type: ignore[arg-type]
        return self._params_replies()

    def _encode(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        return self._later("/encode", partial(self._encoded, _file(args, "/encode")), sender)

    def _encoded(self, path: Path) -> list[Reply]:
        audio = load_audio(path, self.instrument.space.sample_rate)
        self.instrument.encode_sound(audio, self.instrument.space.sample_rate, path.stem)
        return self._sound_replies()

    def _match(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        return self._later("/match", partial(self._matched, _file(args, "/match")), sender)

    def _matched(self, path: Path) -> list[Reply]:
        self.instrument.match_sound(path)
        return self._sound_replies()

    def _sound_replies(self) -> list[Reply]:
        params_reply, knobs_reply = self._params_replies()
        return [params_reply, ("/latent", [float(v) for v in self.instrument.latent]), knobs_reply]

    def _load_preset(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        if len(args) != 1 or not isinstance(args[0], int | str) or isinstance(args[0], bool):
            raise ValueError("/load_preset takes one preset index (int) or name (string)")
        name = self.instrument.load_preset(_short(args[0]))
        return [("/preset", [name]), *self._params_replies()]

    def _interpolate(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        usage = "/interpolate takes two presets (index or name), then optionally a number of steps and a path method"
        if len(args) not in (2, 3, 4) or not all(isinstance(a, int | str) and not isinstance(a, bool) for a in args):
            raise ValueError(usage)
        steps = args[2] if len(args) >= 3 else 9
        if not isinstance(steps, int):
            raise ValueError("/interpolate: the number of steps must be an integer")
        method = args[3] if len(args) == 4 else "straight"
        if not isinstance(method, str):
            raise ValueError(f"/interpolate: the path method must be one of {', '.join(PATH_METHODS)}")
        work = partial(self._path_replies, _short(args[0]), _short(args[1]), steps, _short(method))
        if method == "geodesic" or self._jobs.unfinished_tasks:  # paths are set in the order asked for
            return self._later("/interpolate", work, sender)
        return work()

    def _path_replies(self, start: str | int, end: str | int, steps: int, method: str) -> list[Reply]:
        path = self.instrument.set_path(start, end, steps, method)
        rows = [("/path/step", [i, *map(float, row)]) for i, row in enumerate(path.params.tolist())]
        return [("/path/begin", [len(rows)]), *rows, ("/path/end", [])]

    def _morph(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        if len(args) != 1:
            raise ValueError("/morph takes one position in [0, 1]")
        self.instrument.morph(_number(args[0], "path position", bound=1.0))
        return self._params_replies()

    def _freeze(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        if len(args) != 1 or args[0] not in (0, 1):
            raise ValueError("/freeze takes 1 (on) or 0 (off)")
        self.instrument.set_freeze(bool(args[0]))
        return [("/freeze", [int(self.instrument.freeze)])]

    def _note(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        note, velocity = _midi(args, "/note", with_velocity=True)
        self._require_player().note_on(note, velocity)
        return []

    def _note_off(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        note, _ = _midi(args, "/note_off", with_velocity=False)
        self._require_player().note_off(note)
        return []

    def _get_state(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        state = self.instrument.state()
        params, knobs = self._params_replies()
        return [("/state", [json.dumps(state)]), params, ("/latent", [float(v) for v in state["latent"]]), knobs]

    def _reply_to(self, args: list[Any], sender: tuple[str, int]) -> list[Reply]:
        if len(args) != 1 or not isinstance(args[0], int) or not 1 <= args[0] <= 65535:
            raise ValueError("/reply_to takes one UDP port number in [1, 65535]")
        self._reply_ports[sender[0]] = int(args[0])
        return [("/reply_to", [int(args[0])])]

    def _require_player(self) -> NotePlayer:
        if self.player is None:
            raise ValueError("audio is off: start the server with --audio to play notes")
        return self.player


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if isinstance(error, ValueError | OSError) else f"{type(error).__name__}: {text}"


def _number(value: Any, what: str, bound: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {_short(value)!r}")
    if abs(value) > bound:
        raise ValueError(f"{what} must be in [{-bound:g}, {bound:g}], got {value!r}")
    return float(value)


def _index_value(args: list[Any], address: str) -> tuple[int, float]:
    if len(args) != 2 or isinstance(args[0], bool) or not isinstance(args[0], int):
        raise ValueError(f"{address} takes a knob index (int) and a value in [-1, 1]")
    return int(args[0]), _number(args[1], f"{address} value")


def _string(args: list[Any], address: str, what: str) -> str:
    if len(args) != 1 or not isinstance(args[0], str) or not args[0] or len(args[0]) > MAX_STRING:
        raise ValueError(f"{address} takes one string: {what}")
    return args[0]


def _file(args: list[Any], address: str) -> Path:
    path = Path(_string(args, address, "the path of a sound file"))
    if not path.is_file():
        raise ValueError(f"{address}: no sound file at {str(path)[:300]}")
    return path


def _short(value: Any) -> Any:
    return value[:MAX_STRING] if isinstance(value, str) else value


def _midi(args: list[Any], address: str, with_velocity: bool) -> tuple[int, int]:
    limit = 2 if with_velocity else 1
    if not 1 <= len(args) <= limit or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise ValueError(
            f"{address} takes a MIDI note (int 0-127)" + (" and a velocity (1-127)" if with_velocity else "")
        )
    note, velocity = int(args[0]), int(args[1]) if len(args) > 1 else 100
    if not 0 <= note <= 127 or not 1 <= velocity <= 127:
        raise ValueError(f"{address}: note must be in [0, 127] and velocity in [1, 127], got {note}, {velocity}")
    return note, velocity
