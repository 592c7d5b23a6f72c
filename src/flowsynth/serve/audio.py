"""Live audio: notes of the current sound, re-rendered when the knobs move and crossfaded in without clicks.

The synths render whole notes, not blocks, so the engine plays **pre-rendered notes**: a background
thread renders the current parameters at each needed MIDI note (the notes playing, the notes
waiting to start, and the last note played, so the next trigger starts at once). When the
parameters change, every playing voice gets the new rendering of its note and crossfades to it
linearly over ``crossfade_s`` at the same position in the note: both renderings use the same seed,
so the sound moves on without a jump. A note-off fades the voice out over ``release_s`` (a note held
past the rendered note length plays the synth's own release).

The audio callback (:meth:`AudioEngine.process`) only mixes voices from rendered buffers into the
output with preallocated scratch arrays; control threads talk to it through a queue of events.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowsynth.control import Instrument

__all__ = ["AudioEngine", "AudioOutput", "EngineStats"]

_MASTER_GAIN = 0.5


@dataclass
class _Voice:
    note: int
    buffer: np.ndarray
    gain: float
    pos: int = 0
    next_buffer: np.ndarray | None = None
    fade_pos: int = 0
    releasing: bool = False
    release_pos: int = 0


@dataclass
class EngineStats:
    """What the engine did: renders, crossfades, triggers and their latencies (seconds)."""

    renders: int = 0
    swaps: int = 0
    triggers: int = 0
    render_errors: list[str] = field(default_factory=list)
    #: Note-on call -> first block of the voice.
    trigger_latencies_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))
    #: Parameter change -> first block that crossfades to the new rendering.
    change_latencies_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))


class AudioEngine:
    """Mixes voices of the instrument's current sound (see the module docstring).

    Arguments:
        instrument: The instrument (its changes trigger re-renders).
        sample_rate: Output rate in Hz (None: the model's; renders are resampled to it otherwise).
        max_voices: Most voices at once (the oldest is cut).
        crossfade_s: Length of the crossfade to a new rendering.
        release_s: Fade-out after a note-off.
        default_note: The note rendered ahead before any note is played.
    """

    def __init__(
        self,
        instrument: Instrument,
        sample_rate: int | None = None,
        max_voices: int = 8,
        crossfade_s: float = 0.03,
        release_s: float = 0.08,
        default_note: int = 60,
    ) -> None:
        self.instrument = instrument
        self.sample_rate = int(sample_rate or instrument.space.sample_rate)
        self.max_voices = int(max_voices)
        self.crossfade = max(1, round(crossfade_s * self.sample_rate))
        self.release = max(1, round(release_s * self.sample_rate))
        self.stats = EngineStats()
        self.playing: tuple[int, ...] = ()
        self._voices: list[_Voice] = []
        self._events: collections.deque = collections.deque()
        self._cache: dict[int, np.ndarray] = {}
        self._cache_version = -1
        self._pending: dict[int, tuple[int, float]] = {}
        self._last_note = int(default_note)
        self._changed_at: dict[int, float] = {}
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowsynth-renderer", daemon=True)
        self._ramp = np.arange(0, dtype=np.float32)
        self._scratch = np.zeros(0, dtype=np.float32)
        self._reserve(4096)

    # -- control side -------------------------------------------------------------------------

    def start(self) -> AudioEngine:
        self.instrument.subscribe(self._on_change)
        self._thread.start()
        self._wake.set()
        return self

    def stop(self) -> None:
        self.instrument.unsubscribe(self._on_change)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)

    def note_on(self, note: int, velocity: int = 100) -> None:
        """Plays ``note`` (at once if its rendering of the current sound is ready, else when it is)."""
        if not 0 <= int(note) <= 127 or not 1 <= int(velocity) <= 127:
            raise ValueError(f"note must be in [0, 127] and velocity in [1, 127], got {note}, {velocity}")
        now = time.perf_counter()
        with self._lock:
            self._last_note = int(note)
            ready = self._cache.get(int(note)) if self._cache_version == self.instrument.version else None
            if ready is None:
                self._pending[int(note)] = (int(velocity), now)
        if ready is not None:
            self._events.append(("start", int(note), velocity / 100.0, ready, now))
        else:
            self._wake.set()

    def note_off(self, note: int) -> None:
        """Releases ``note`` (or cancels it if it has not started)."""
        with self._lock:
            self._pending.pop(int(note), None)
        self._events.append(("release", int(note)))

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Waits until the rendering of the current sound at the last note is ready."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            with self._lock:
                if self._cache_version == self.instrument.version and self._last_note in self._cache:
                    return True
            time.sleep(0.005)
        return False

    def _on_change(self, version: int) -> None:
        self._changed_at[version] = time.perf_counter()
        if len(self._changed_at) > 256:
            for old in sorted(self._changed_at)[:-128]:
                self._changed_at.pop(old, None)
        self._wake.set()

    # -- renderer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        self.instrument.prepare_thread()
        while not self._stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._render_needed()
            except Exception as error:  # keep playing the last renderings; report the failure
                self.stats.render_errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.1)

    def _render_needed(self) -> None:
        version, params = self.instrument.version, self.instrument.params
        with self._lock:
            if self._cache_version != version:
                self._cache, self._cache_version = {}, version
            wanted = [*self._pending, *self.playing, self._last_note]
            todo = [n for n in dict.fromkeys(wanted) if n not in self._cache]
        for note in todo:
            if self.instrument.version != version:
                self._wake.set()  # newer parameters: start over with them
                return
            buffer = self._render(params, note)
            with self._lock:
                if self._cache_version != version:
                    return
                self._cache[note] = buffer
                if self.instrument.version != version:
                    # the sound changed while this note rendered: a waiting note starts (or a playing
                    # one fades) only with the current sound, rendered on the next round
                    self._wake.set()
                    return
                start = self._pending.pop(note, None)
            if start is not None:
                self._events.append(("start", note, start[0] / 100.0, buffer, start[1]))
            elif note in self.playing:
                self._events.append(("swap", note, buffer, self._changed_at.get(version)))

    def _render(self, params: Any, note: int) -> np.ndarray:
        audio = self.instrument.space.render(params[None], note=note)[0].nan_to_num().numpy()
        self.stats.renders += 1
        if self.sample_rate != self.instrument.space.sample_rate:
            from flowsynth.audio.io import resample

            audio = resample(audio[None], self.instrument.space.sample_rate, self.sample_rate)[0]
        return np.ascontiguousarray(audio, dtype=np.float32)

    # -- audio callback -----------------------------------------------------------------------

    def _reserve(self, frames: int) -> None:
        if len(self._ramp) < frames:
            self._ramp = np.arange(frames, dtype=np.float32)
            self._scratch = np.zeros(frames, dtype=np.float32)

    def process(self, out: np.ndarray) -> None:
        """Fills ``out [frames]`` (float32) with the next block: the body of the audio callback."""
        frames = len(out)
        self._reserve(frames)
        self._apply_events()
        out[:] = 0.0
        alive = []
        for voice in self._voices:
            if self._mix(voice, out, frames):
                alive.append(voice)
        self._voices = alive
        self.playing = tuple(v.note for v in alive if not v.releasing)
        np.clip(out, -1.0, 1.0, out=out)

    def _apply_events(self) -> None:
        now = time.perf_counter()
        while self._events:
            event = self._events.popleft()
            kind, note = event[0], event[1]
            if kind == "start":
                if len(self._voices) >= self.max_voices:
                    self._voices.pop(0)
                self._voices.append(_Voice(note, event[3], event[2]))
                self.stats.triggers += 1
                self.stats.trigger_latencies_s.append(now - event[4])
            elif kind == "swap":
                for voice in self._voices:
                    if voice.note == note:
                        voice.next_buffer, voice.fade_pos = event[2], 0
                self.stats.swaps += 1
                if event[3] is not None:
                    self.stats.change_latencies_s.append(now - event[3])
            elif kind == "release":
                for voice in self._voices:
                    if voice.note == note and not voice.releasing:
                        voice.releasing, voice.release_pos = True, 0

    def _mix(self, voice: _Voice, out: np.ndarray, frames: int) -> bool:
        """Adds one voice's next block to ``out``; False when the voice has ended."""
        n = max(0, min(frames, len(voice.buffer) - voice.pos))
        block = self._scratch[:n]
        block[:] = voice.buffer[voice.pos : voice.pos + n]
        if voice.next_buffer is not None:
            ramp = np.clip((self._ramp[:n] + voice.fade_pos) / self.crossfade, 0.0, 1.0)
            block += ramp * (voice.next_buffer[voice.pos : voice.pos + n] - block)
            voice.fade_pos += n
            if voice.fade_pos >= self.crossfade:
                voice.buffer, voice.next_buffer = voice.next_buffer, None
        if voice.releasing:
            block *= np.clip(1.0 - (self._ramp[:n] + voice.release_pos) / self.release, 0.0, 1.0)
            voice.release_pos += n
        out[:n] += _MASTER_GAIN * voice.gain * block
        voice.pos += n
        return voice.pos < len(voice.buffer) and not (voice.releasing and voice.release_pos >= self.release)


class AudioOutput:
    """Runs an :class:`AudioEngine` in a sounddevice output stream (mono, copied to every channel).

    Arguments:
        engine: The engine (its ``sample_rate`` is the stream's).
        device: sounddevice device (index or name; None: the default output).
        block_size: Frames per callback.
        channels: Output channels.
        record_s: Keep the last ``record_s`` seconds written (for tests and meters); 0: none.

    ``blocks`` and ``underruns`` count callbacks and the output underflows they were told of;
    ``max_callback_s`` is the longest callback in wall time, ``max_callback_cpu_s`` in its thread's CPU time.
    """

    def __init__(
        self,
        engine: AudioEngine,
        device: int | str | None = None,
        block_size: int = 512,
        channels: int = 1,
        record_s: float = 0.0,
    ) -> None:
        self.engine, self.device, self.block_size, self.channels = engine, device, int(block_size), int(channels)
        self.blocks = self.underruns = 0
        self.max_callback_s = self.max_callback_cpu_s = 0.0
        self.recording = np.zeros(round(record_s * engine.sample_rate), dtype=np.float32)
        self._written = 0
        self._mono = np.zeros(self.block_size, dtype=np.float32)
        self._stream: Any = None

    @property
    def recorded(self) -> np.ndarray:
        """What was written, oldest first (at most ``record_s`` seconds)."""
        size = len(self.recording)
        if self._written <= size:
            return self.recording[: self._written].copy()
        start = self._written % size
        return np.concatenate([self.recording[start:], self.recording[:start]])

    def start(self) -> AudioOutput:
        import sounddevice

        self.engine.start()
        self._stream = sounddevice.OutputStream(
            samplerate=self.engine.sample_rate,
            blocksize=self.block_size,
            device=self.device,
            channels=self.channels,
            dtype="float32",
            callback=self._callback,
        )
        self._stream.start()
        return self

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        self.engine.stop()

    def __enter__(self) -> AudioOutput:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        started, started_cpu = time.perf_counter(), time.thread_time()
        if status.output_underflow:
            self.underruns += 1
        if len(self._mono) < frames:
            self._mono = np.zeros(frames, dtype=np.float32)
        mono = self._mono[:frames]
        self.engine.process(mono)
        outdata[:] = mono[:, None]
        self._record(mono)
        self.blocks += 1
        self.max_callback_s = max(self.max_callback_s, time.perf_counter() - started)
        self.max_callback_cpu_s = max(self.max_callback_cpu_s, time.thread_time() - started_cpu)

    def _record(self, block: np.ndarray) -> None:
        size = len(self.recording)
        if size == 0:
            return
        start = self._written % size
        first = min(len(block), size - start)
        self.recording[start : start + first] = block[:first]
        self.recording[: len(block) - first] = block[first:]
        self._written += len(block)
