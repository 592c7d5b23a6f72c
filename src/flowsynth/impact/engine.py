"""The instrument's engine: gates and CVs in, audio blocks out, with renders made away from the audio path.

Two gates and three CVs, as on the module: gate 1 plays the current impact, gate 2 the merge of the
current impact with a second one; CV ``richness`` and CV ``noisiness`` (0.5: unchanged) edit both, CV
``degree`` sets the merge degree. Renders of both gates' sounds are kept in a fixed pool of preallocated
slots. :meth:`ImpactEngine.process` (the audio callback's body) only reads published slots and writes into
the output block: it never allocates arrays, takes a lock or waits on the model. When new CVs have been
rendered, playing voices cross-fade from the old render to the new one at their current position.

Threading rules (single writer per field): control threads call :meth:`~ImpactEngine.trigger` and
:meth:`~ImpactEngine.set_cv`; the render side (:meth:`~ImpactEngine.render_pending`, called by a
background thread in real time, or between blocks offline) writes only into slots that are neither
published nor played, and no sooner than two blocks after they were retired.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["CV_NAMES", "EngineConfig", "ImpactEngine", "RenderFunction", "shared_size"]

#: The three CVs, in order: richness and noisiness edit the sound, degree sets gate 2's merge.
CV_NAMES = ("richness", "noisiness", "degree")

#: Renders one gate's sound: ``(gate, cvs) -> float32 audio`` at the engine's sample rate.
RenderFunction = Callable[[int, tuple[float, float, float]], np.ndarray]


@dataclass(frozen=True)
class EngineConfig:
    """Sizes of the engine's preallocated state.

    Arguments:
        sample_rate: Output sample rate in Hz.
        block_size: Largest block :meth:`ImpactEngine.process` is given.
        impact_samples: Length of one rendered impact in samples.
        voices: Impacts that can sound at once (the oldest is stolen beyond that).
        slots: Render slots per gate (at least 3: published, retiring, being written).
        crossfade_s: Cross-fade duration when a new render replaces a playing one.
        cv_tolerance: Smallest CV change that causes a new render.
        gain: Output gain applied to the mix.
    """

    sample_rate: int = 22050
    block_size: int = 256
    impact_samples: int = 22050
    voices: int = 8
    slots: int = 4
    crossfade_s: float = 0.01
    cv_tolerance: float = 0.01
    gain: float = 0.5

    def __post_init__(self) -> None:
        if self.slots < 3:
            raise ValueError(f"slots must be at least 3 (published, retiring, being written), got {self.slots}")
        if self.block_size < 1 or self.impact_samples < self.block_size or self.voices < 1:
            raise ValueError("need block_size >= 1, impact_samples >= block_size and voices >= 1")


def _layout(config: EngineConfig) -> dict[str, tuple[tuple[int, ...], type]]:
    """Shapes and types of the state shared by the audio side and the render side."""
    return {
        "slots": ((2, config.slots, config.impact_samples), np.float32),
        "uses": ((2, config.slots), np.int64),
        "retired_at": ((2, config.slots), np.int64),
        "published": ((2,), np.int64),
        "cvs": ((len(CV_NAMES),), np.float64),
        "rendered_cvs": ((len(CV_NAMES),), np.float64),
        "counters": ((4,), np.int64),
    }


def shared_size(config: EngineConfig) -> int:
    """Bytes of the shared state of an engine (see :meth:`ImpactEngine.attach`)."""
    return sum(int(np.prod(shape)) * np.dtype(kind).itemsize for shape, kind in _layout(config).values())


def _views(config: EngineConfig, buffer: memoryview | bytearray) -> dict[str, np.ndarray]:
    views: dict[str, np.ndarray] = {}
    offset = 0
    for name, (shape, kind) in _layout(config).items():
        count = int(np.prod(shape))
        views[name] = np.frombuffer(buffer, dtype=kind, count=count, offset=offset).reshape(shape)
        offset += count * np.dtype(kind).itemsize
    return views


class ImpactEngine:
    """Polyphonic player of rendered impacts driven by two gates and three CVs (see the module docstring).

    Arguments:
        render: Renders a gate's sound for CV values (used by :meth:`render_pending`).
        config: Sizes of the preallocated state.
        buffer: Memory for the shared state (``shared_size(config)`` bytes, e.g. a
            ``multiprocessing.shared_memory.SharedMemory``'s ``buf``), so that another process can render
            into it; by default a private buffer. A new buffer is initialized; see :meth:`attach`.

    >>> engine = ImpactEngine(lambda gate, cvs: np.full(512, 0.1 * gate, np.float32),
    ...                       EngineConfig(block_size=64, impact_samples=512))
    >>> engine.render_pending()
    True
    >>> engine.trigger(2)
    >>> block = np.zeros((64, 1), np.float32)
    >>> engine.process(block)
    >>> round(float(block[0, 0]), 3)
    0.1
    """

    def __init__(
        self, render: RenderFunction, config: EngineConfig | None = None, buffer: memoryview | bytearray | None = None
    ) -> None:
        self._setup(render, config or EngineConfig(), buffer, initialize=True)

    @classmethod
    def attach(cls, render: RenderFunction, config: EngineConfig, buffer: memoryview | bytearray) -> ImpactEngine:
        """An engine over an existing shared state (another process's render side); nothing is reset."""
        engine = cls.__new__(cls)
        engine._setup(render, config, buffer, initialize=False)
        return engine

    def _setup(self, render: RenderFunction, config: EngineConfig, buffer, initialize: bool) -> None:
        self.config = c = config
        self._render = render
        self._bind(buffer if buffer is not None else bytearray(shared_size(c)))
        if initialize:
            self._slots.fill(0.0)
            self._uses.fill(0)
            self._retired_at.fill(-(10**9))
            self._published.fill(-1)
            self._cvs[:] = 0.5
            self._rendered_cvs.fill(np.nan)
            self._counters.fill(0)
        self._events: collections.deque[tuple[int, int]] = collections.deque()
        self._voice_gate = np.zeros(c.voices, np.int64)
        self._voice_slot = np.full(c.voices, -1, np.int64)
        self._voice_from = np.full(c.voices, -1, np.int64)
        self._voice_pos = np.zeros(c.voices, np.int64)
        self._voice_fade = np.zeros(c.voices, np.int64)
        self._voice_age = np.zeros(c.voices, np.int64)
        fade = max(1, round(c.crossfade_s * c.sample_rate))
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade + 2)[1:-1])
        self._fade_out = (1.0 - ramp).astype(np.float32)
        self._scratch = np.zeros(c.block_size, np.float32)
        self._mix = np.zeros(c.block_size, np.float32)

    def _bind(self, buffer: memoryview | bytearray) -> None:
        state = _views(self.config, buffer)
        self._slots, self._uses, self._retired_at = state["slots"], state["uses"], state["retired_at"]
        self._published, self._cvs, self._rendered_cvs = state["published"], state["cvs"], state["rendered_cvs"]
        self._counters = state["counters"]

    def detach(self) -> None:
        """Moves the state into a private copy, releasing an outside buffer (call with the stream stopped)."""
        private = bytearray(shared_size(self.config))
        copy = _views(self.config, private)
        for name, view in copy.items():
            view[...] = getattr(self, f"_{name}")
        self._bind(private)

    @property
    def blocks_done(self) -> int:
        """Blocks processed."""
        return int(self._counters[0])

    @property
    def active_voices(self) -> int:
        """Voices sounding now (read from the control side, not meant for the callback)."""
        return int((self._voice_slot >= 0).sum())

    @property
    def renders(self) -> int:
        """Renders published (each renders both gates)."""
        return int(self._counters[1])

    @property
    def triggers_played(self) -> int:
        """Gates that started a voice."""
        return int(self._counters[2])

    @property
    def triggers_dropped(self) -> int:
        """Gates that came before anything was rendered."""
        return int(self._counters[3])

    # -- control side -------------------------------------------------------------------------------------
    def trigger(self, gate: int, offset: int = 0) -> None:
        """Queues a gate (1 or 2) to start ``offset`` samples into the next processed block."""
        if gate not in (1, 2):
            raise ValueError(f"gate must be 1 or 2, got {gate}")
        self._events.append((gate, offset))

    def set_cv(self, name: str, value: float) -> None:
        """Sets a CV (``richness``, ``noisiness`` or ``degree``), clipped to [0, 1]."""
        if name not in CV_NAMES:
            raise ValueError(f"unknown CV {name!r}; the CVs are {', '.join(CV_NAMES)}")
        self._cvs[CV_NAMES.index(name)] = min(1.0, max(0.0, float(value)))

    @property
    def cvs(self) -> tuple[float, float, float]:
        """Current CV values (richness, noisiness, degree)."""
        return (float(self._cvs[0]), float(self._cvs[1]), float(self._cvs[2]))

    # -- render side --------------------------------------------------------------------------------------
    def render_pending(self) -> bool:
        """Renders both gates' sounds when the CVs moved (or nothing is rendered yet); True if it did."""
        cvs = self._cvs.copy()
        if np.all(np.abs(cvs - self._rendered_cvs) < self.config.cv_tolerance):
            return False
        values = (float(cvs[0]), float(cvs[1]), float(cvs[2]))
        for gate_index in range(2):
            slot = self._free_slot(gate_index)
            if slot < 0:
                return False
            self._write_slot(gate_index, slot, self._render(gate_index + 1, values))
            previous = int(self._published[gate_index])
            self._published[gate_index] = slot
            if previous >= 0:
                self._retired_at[gate_index, previous] = self._counters[0]
        self._rendered_cvs[:] = cvs
        self._counters[1] += 1
        return True

    def _free_slot(self, gate_index: int) -> int:
        """A slot neither published, played, nor retired less than two blocks ago (-1: none yet)."""
        safe = self._counters[0] - 2
        for slot in np.argsort(self._retired_at[gate_index]):
            if (
                slot != self._published[gate_index]
                and self._uses[gate_index, slot] == 0
                and self._retired_at[gate_index, slot] <= safe
            ):
                return int(slot)
        return -1

    def _write_slot(self, gate_index: int, slot: int, audio: np.ndarray) -> None:
        target = self._slots[gate_index, slot]
        n = min(len(audio), len(target))
        target[:n] = audio[:n]
        target[n:] = 0.0

    # -- audio side: no allocation, no lock, no waiting -----------------------------------------------------
    def process(self, out: np.ndarray) -> None:
        """Fills ``out`` [frames, channels] (float32, frames <= block_size) with the mix; the callback's body."""
        frames = out.shape[0]
        mix = self._mix[:frames]
        mix.fill(0.0)
        while self._events:
            gate, offset = self._events.popleft()
            self._start_voice(gate - 1, min(max(offset, 0), frames - 1))
        for voice in range(self.config.voices):
            if self._voice_slot[voice] >= 0:
                self._play(voice, mix, frames)
        mix *= self.config.gain
        for channel in range(out.shape[1]):
            out[:, channel] = mix
        self._counters[0] += 1

    def _start_voice(self, gate_index: int, offset: int) -> None:
        slot = self._published[gate_index]
        if slot < 0:
            self._counters[3] += 1
            return
        voice = self._voice_to_use()
        self._stop_voice(voice)
        self._voice_gate[voice] = gate_index
        self._voice_slot[voice] = slot
        self._voice_pos[voice] = -offset
        self._voice_age[voice] = self._counters[0] * self.config.block_size + offset
        self._uses[gate_index, slot] += 1
        self._counters[2] += 1

    def _voice_to_use(self) -> int:
        """A silent voice, else the one started first."""
        oldest = 0
        for voice in range(self.config.voices):
            if self._voice_slot[voice] < 0:
                return voice
            if self._voice_age[voice] < self._voice_age[oldest]:
                oldest = voice
        return oldest

    def _stop_voice(self, voice: int) -> None:
        gate_index = self._voice_gate[voice]
        for slot in (self._voice_slot[voice], self._voice_from[voice]):
            if slot >= 0:
                self._uses[gate_index, slot] -= 1
        self._voice_slot[voice] = self._voice_from[voice] = -1

    def _play(self, voice: int, mix: np.ndarray, frames: int) -> None:
        gate_index, pos = self._voice_gate[voice], int(self._voice_pos[voice])
        newest = self._published[gate_index]
        if newest != self._voice_slot[voice] and self._voice_from[voice] < 0:
            self._voice_from[voice] = self._voice_slot[voice]
            self._voice_slot[voice] = newest
            self._voice_fade[voice] = 0
            self._uses[gate_index, newest] += 1
        start, stop = max(pos, 0), min(pos + frames, self.config.impact_samples)
        if stop > start:
            lo, hi = start - pos, stop - pos
            mix[lo:hi] += self._slots[gate_index, self._voice_slot[voice], start:stop]
            if self._voice_from[voice] >= 0:
                self._crossfade(voice, gate_index, mix[lo:hi], start, stop)
        self._voice_pos[voice] = pos + frames
        if pos + frames >= self.config.impact_samples:
            self._stop_voice(voice)

    def _crossfade(self, voice: int, gate_index: int, mix: np.ndarray, start: int, stop: int) -> None:
        """Adds (old - new) * fade_out so that the sum moves from the old render to the new one."""
        n, fade = stop - start, int(self._voice_fade[voice])
        m = min(n, len(self._fade_out) - fade)
        scratch = self._scratch[:m]
        old = self._slots[gate_index, self._voice_from[voice], start : start + m]
        np.subtract(old, self._slots[gate_index, self._voice_slot[voice], start : start + m], out=scratch)
        np.multiply(scratch, self._fade_out[fade : fade + m], out=scratch)
        mix[:m] += scratch
        self._voice_fade[voice] = fade + m
        if fade + m >= len(self._fade_out):
            self._uses[gate_index, self._voice_from[voice]] -= 1
            self._voice_from[voice] = -1
