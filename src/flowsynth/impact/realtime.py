"""Real-time face of the engine: audio out through sounddevice, controls by MIDI, OSC or CV on audio inputs.

* MIDI (mido): note ``gate_notes[0]`` plays gate 1, ``gate_notes[1]`` gate 2; CCs ``cv_ccs`` set the CVs
  richness, noisiness and degree (value / 127).
* OSC (python-osc, UDP): ``/gate 1`` or ``/gate 2``; ``/cv/richness f``, ``/cv/noisiness f``, ``/cv/degree f``.
* CV input (DC-coupled interface): input channels carry gate 1, gate 2 (a rise above ``threshold``) and
  the three CVs (the block's mean, clipped to [0, 1]).

Renders run in a :class:`RenderProcess` (or a :class:`BackgroundRenderer` thread) when CVs move; the audio
callback only runs :meth:`~flowsynth.impact.engine.ImpactEngine.process` and counts (preallocated counters).
While a :class:`Player` plays, the interpreter hands its lock between threads every
:data:`SWITCH_INTERVAL_S` instead of Python's default 5 ms, so that a control thread running Python code
delays the callback (which needs the lock) by at most that much; and the objects that exist when play
starts are frozen out of the garbage collector's scans (``gc.freeze``), so that a collection, which holds
the lock in whichever thread triggers it, only walks the few objects made while playing.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowsynth.impact.engine import CV_NAMES, EngineConfig, ImpactEngine, shared_size

__all__ = [
    "SWITCH_INTERVAL_S",
    "BackgroundRenderer",
    "CvInput",
    "MidiMap",
    "PlayStats",
    "Player",
    "RenderProcess",
    "osc_dispatcher",
]


#: Longest time another Python thread keeps the interpreter lock from the audio callback while playing.
SWITCH_INTERVAL_S = 0.0005

#: Renders run at a lower CPU priority than the audio callback (a busy machine starves them, not the audio).
_RENDER_NICENESS = 10


class RenderProcess:
    """A separate process that renders into the engine's shared memory whenever the CVs move.

    The model runs outside the audio process, so it never holds the interpreter lock the audio
    callback needs (a torch operation in a thread of the same process can delay the callback).
    """

    def __init__(self, engine: ImpactEngine, memory_name: str, instrument: Any, poll_s: float = 0.005) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.errors: list[str] = []
        self._stop = context.Event()
        self._errors = context.Queue()
        args = (memory_name, engine.config, instrument, self._stop, self._errors, poll_s)
        self._process = context.Process(target=_render_main, args=args, name="impact-renderer", daemon=True)

    def start(self) -> RenderProcess:
        self._process.start()
        return self

    def wake(self) -> None:
        """Nothing to do: the render process polls the shared CVs every ``poll_s``."""

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=10.0)
        if self._process.is_alive():
            self._process.terminate()
        while not self._errors.empty():
            self.errors.append(self._errors.get())


def _render_main(
    memory_name: str, config: EngineConfig, instrument: Any, stop: Any, errors: Any, poll_s: float
) -> None:
    """Body of :class:`RenderProcess`: attach to the shared state and render when the CVs move."""
    from multiprocessing import shared_memory

    import torch

    torch.set_num_threads(1)
    os.nice(_RENDER_NICENESS)
    memory = shared_memory.SharedMemory(name=memory_name)
    engine = ImpactEngine.attach(instrument, config, memory.buf)  # type: ignore[arg-type]
    while not stop.is_set():
        try:
            engine.render_pending()
        except Exception as error:  # keep the last good render playing; report the failure
            errors.put(f"{type(error).__name__}: {error}")
            stop.wait(0.1)
        stop.wait(poll_s)
    engine.detach()
    memory.close()


class BackgroundRenderer:
    """A thread that calls ``engine.render_pending()`` when woken and every ``poll_s`` seconds."""

    def __init__(self, engine: ImpactEngine, poll_s: float = 0.005) -> None:
        self.engine, self.poll_s = engine, poll_s
        self.errors: list[str] = []
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="impact-renderer", daemon=True)

    def start(self) -> BackgroundRenderer:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Asks for a render check now (call from control threads, never from the audio callback)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            try:
                self.engine.render_pending()
            except Exception as error:  # keep playing the last good render; report the failure
                self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.1)


@dataclass(frozen=True)
class MidiMap:
    """Which MIDI notes are the gates and which CCs are the CVs (richness, noisiness, degree)."""

    gate_notes: tuple[int, int] = (36, 38)
    cv_ccs: tuple[int, int, int] = (1, 2, 3)
    channel: int | None = None

    def handle(self, engine: ImpactEngine, message: Any, on_control: Callable[[], None] | None = None) -> None:
        """Applies one mido message to the engine (other messages are ignored)."""
        if self.channel is not None and getattr(message, "channel", None) != self.channel:
            return
        if message.type == "note_on" and message.velocity > 0 and message.note in self.gate_notes:
            engine.trigger(self.gate_notes.index(message.note) + 1)
        elif message.type == "control_change" and message.control in self.cv_ccs:
            engine.set_cv(CV_NAMES[self.cv_ccs.index(message.control)], message.value / 127.0)
            if on_control:
                on_control()


def osc_dispatcher(engine: ImpactEngine, on_control: Callable[[], None] | None = None) -> Any:
    """A python-osc dispatcher for ``/gate N`` and ``/cv/NAME value``."""
    from pythonosc.dispatcher import Dispatcher

    def gate(_address: str, *args: Any) -> None:
        if args and int(args[0]) in (1, 2):
            engine.trigger(int(args[0]))

    def cv(address: str, *args: Any) -> None:
        name = address.rsplit("/", 1)[-1]
        if args and name in CV_NAMES:
            engine.set_cv(name, float(args[0]))
            if on_control:
                on_control()

    dispatcher = Dispatcher()
    dispatcher.map("/gate", gate)
    dispatcher.map("/cv/*", cv)
    return dispatcher


@dataclass
class CvInput:
    """Gates and CVs read from audio input channels (0-based): gate channels fire on a rise above threshold."""

    gate_channels: tuple[int, int] = (0, 1)
    cv_channels: tuple[int, int, int] = (2, 3, 4)
    threshold: float = 0.5
    _high: list[bool] = field(default_factory=lambda: [False, False])

    @property
    def channels(self) -> int:
        return 1 + max(*self.gate_channels, *self.cv_channels)

    def process(self, indata: np.ndarray, engine: ImpactEngine) -> None:
        """Reads one input block (called in the audio callback before ``engine.process``)."""
        for gate_index, channel in enumerate(self.gate_channels):
            column = indata[:, channel]
            peak = float(column.max())
            if peak > self.threshold and not self._high[gate_index]:
                engine.trigger(gate_index + 1, int(np.argmax(column > self.threshold)))
            self._high[gate_index] = float(column[-1]) > self.threshold
        for name, channel in zip(CV_NAMES, self.cv_channels, strict=True):
            engine.set_cv(name, float(indata[:, channel].mean()))


@dataclass
class PlayStats:
    """What happened during a performance.

    ``underruns`` are the stream's own output-underflow flags (the device was not fed in time, whatever the
    cause, a busy machine included), ``underrun_blocks`` the blocks they were flagged on and
    ``underrun_times`` when (``time.monotonic()``, the first 64 of each); ``max_callback_s`` is the longest
    callback in wall-clock time (which
    includes time the OS gave to other processes) and ``max_callback_cpu_s`` the CPU time of the slowest
    callback, the engine's own cost; ``over_budget_callbacks`` counts callbacks whose CPU time exceeded a
    block.
    """

    blocks: int = 0
    underruns: int = 0
    underrun_blocks: list[int] = field(default_factory=list)
    underrun_times: list[float] = field(default_factory=list)
    late_callbacks: int = 0
    max_callback_s: float = 0.0
    max_callback_cpu_s: float = 0.0
    over_budget_callbacks: int = 0
    triggers: int = 0
    renders: int = 0
    latencies_s: list[float] = field(default_factory=list)
    render_errors: list[str] = field(default_factory=list)


class Player:
    """Plays an instrument through a sounddevice stream; gates/CVs come from MIDI, OSC, CV input or calls.

    Arguments:
        instrument: Renders a gate's sound for CV values (e.g. an
            :class:`~flowsynth.impact.instrument.ImpactInstrument`; picklable when ``render_in="process"``).
        config: The engine's sizes (its sample rate is the stream's).
        device: sounddevice output device (index or name), default device when None.
        cv_input: Read gates and CVs from input channels.
        record_s: Keep the first seconds of output in :attr:`recording` (a preallocated tap).
        render_in: ``"process"`` (default: renders never compete with the callback for the interpreter
            lock) or ``"thread"``.

    Trigger-to-sound latency is measured per trigger made through :meth:`trigger`: from the call to the
    start of the block that plays it, plus the stream's own output latency.
    """

    def __init__(
        self,
        instrument: Any,
        config: EngineConfig,
        device: Any = None,
        cv_input: CvInput | None = None,
        record_s: float = 0.0,
        render_in: str = "process",
    ) -> None:
        if render_in not in ("process", "thread"):
            raise ValueError(f"render_in must be 'process' or 'thread', got {render_in!r}")
        self.instrument, self.device, self.cv_input, self.render_in = instrument, device, cv_input, render_in
        self._memory: Any = None
        if render_in == "process":
            from multiprocessing import shared_memory

            self._memory = shared_memory.SharedMemory(create=True, size=shared_size(config))
        self.engine = ImpactEngine(instrument, config, self._memory.buf if self._memory else None)
        self.renderer: RenderProcess | BackgroundRenderer | None = None
        self.stats = PlayStats()
        #: The first ``record_s`` seconds of output.
        self.recording = np.zeros(round(record_s * config.sample_rate), np.float32)
        self._recorded = 0
        self._asked = np.zeros(1 << 16, np.float64)
        self._started = np.zeros(1 << 16, np.float64)
        self._asked_count = 0
        self._underrun_at = np.zeros(64, np.int64)
        self._underrun_time = np.zeros(64, np.float64)
        self._period_s = config.block_size / config.sample_rate
        self._stream: Any = None
        self._output_latency_s = 0.0
        self._switch_interval_s = sys.getswitchinterval()

    def trigger(self, gate: int) -> None:
        """Plays a gate as a control thread would, recording the time for the latency measurement."""
        self._asked[self._asked_count % len(self._asked)] = time.monotonic()
        self._asked_count += 1
        self.engine.trigger(gate)

    def set_cv(self, name: str, value: float) -> None:
        self.engine.set_cv(name, value)
        if self.renderer is not None:
            self.renderer.wake()

    def wake(self) -> None:
        """Tells the renderer that CVs moved (for control callbacks)."""
        if self.renderer is not None:
            self.renderer.wake()

    def _callback(self, *args: Any) -> None:
        indata, outdata, status = (args[0], args[1], args[4]) if len(args) == 5 else (None, args[0], args[3])
        began, began_cpu = time.monotonic(), time.thread_time()
        if status.output_underflow:
            if self.stats.underruns < len(self._underrun_at):
                self._underrun_at[self.stats.underruns] = self.engine.blocks_done
                self._underrun_time[self.stats.underruns] = began
            self.stats.underruns += 1
        if self.cv_input is not None and indata is not None:
            self.cv_input.process(indata, self.engine)
        before = self.engine.triggers_played
        self.engine.process(outdata)
        for k in range(before, self.engine.triggers_played):
            self._started[k % len(self._started)] = began
        if self._recorded < len(self.recording):
            n = min(len(outdata), len(self.recording) - self._recorded)
            self.recording[self._recorded : self._recorded + n] = outdata[:n, 0]
            self._recorded += n
        spent = time.monotonic() - began
        self.stats.max_callback_s = max(self.stats.max_callback_s, spent)
        cpu = time.thread_time() - began_cpu
        self.stats.max_callback_cpu_s = max(self.stats.max_callback_cpu_s, cpu)
        if cpu > self._period_s:
            self.stats.over_budget_callbacks += 1
        if spent > self._period_s:
            self.stats.late_callbacks += 1

    def __enter__(self) -> Player:
        import sounddevice

        config = self.engine.config
        self.engine.render_pending()
        if self._memory is not None:
            self.renderer = RenderProcess(self.engine, self._memory.name, self.instrument).start()
        else:
            self.renderer = BackgroundRenderer(self.engine).start()
        self._switch_interval_s = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval_s, SWITCH_INTERVAL_S))
        gc.collect()
        gc.freeze()
        kind = sounddevice.Stream if self.cv_input else sounddevice.OutputStream
        channels = (self.cv_input.channels, 2) if self.cv_input else 2
        self._stream = kind(
            samplerate=config.sample_rate,
            blocksize=config.block_size,
            device=self.device,
            channels=channels,
            dtype="float32",
            callback=self._callback,
            latency="low",
        )
        self._stream.start()
        latency = self._stream.latency
        self._output_latency_s = float(latency[1] if isinstance(latency, tuple) else latency)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
        sys.setswitchinterval(self._switch_interval_s)
        gc.unfreeze()
        if self.renderer is not None:
            self.renderer.stop()
        if self._memory is not None:
            self.engine.detach()
            self._memory.close()
            self._memory.unlink()
            self._memory = None
        self.stats.blocks = self.engine.blocks_done
        self.stats.underrun_blocks = [int(b) for b in self._underrun_at[: self.stats.underruns]]
        self.stats.underrun_times = [float(t) for t in self._underrun_time[: self.stats.underruns]]
        self.stats.triggers = self.engine.triggers_played
        self.stats.renders = self.engine.renders
        self.stats.render_errors = list(self.renderer.errors) if self.renderer else []
        played = min(self._asked_count, self.engine.triggers_played, len(self._asked))
        waits = self._started[:played] - self._asked[:played]
        self.stats.latencies_s = [float(w) + self._output_latency_s for w in waits if w >= 0]

    @property
    def output_latency_s(self) -> float:
        """The stream's output latency (device buffer) in seconds."""
        return self._output_latency_s
