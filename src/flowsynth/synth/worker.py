"""Worker processes that render Faust programs and plugins, so that a crash or a hang costs one sound.

A :class:`WorkerPool` keeps a few persistent Python processes. Each one loads a synth engine
(a dawdreamer render engine with its processor) once, keeps it, and renders many sounds with it. A
worker that dies (segmentation fault, abort, ``exit``) or stops answering within ``timeout_s`` is
killed and replaced; only the sound it was rendering fails, as a row of NaN (``on_error="nan"``)
or as a :class:`~flowsynth.errors.RenderError` naming the sound and the cause (``on_error="raise"``).

Workers are started as fresh interpreters (``python -m flowsynth.synth.worker``, the "spawn" way:
nothing of the parent is inherited, and scripts need no ``if __name__ == "__main__"`` guard). They
talk over two pipes; their standard output goes to ``/dev/null`` (plugins print a lot) and their
standard error to a file whose tail is quoted when a worker dies.

Engines are classes named ``"module:Class"`` (see :class:`EngineSpec`) built in the worker as
``Class(sample_rate=..., **options)``; they render one sound with
``render(values, config, seed) -> float32 [samples]``. :class:`FaultEngine` is the documented test
hook: a sine voice whose ``fault`` value makes the worker really crash, hang or raise.
:class:`PooledSynth` is the synth side that Faust programs and plugins share: their pool, their
calls to the engine and their batch renders.
"""

from __future__ import annotations

import abc
import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowsynth.errors import RenderError
from flowsynth.synth.base import OnError, RenderConfig, Synth
from flowsynth.system import usable_cores

__all__ = ["EngineSpec", "WorkerPool", "PooledSynth", "FaultEngine", "default_pool", "describe_exit"]

#: Seconds a worker may take to start and load an engine (imports, plugin scan, Faust compile).
LOAD_TIMEOUT_S = 120.0
_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS):
        pool.close()


@dataclass(frozen=True)
class EngineSpec:
    """What a worker builds to render: an engine class and its JSON-ready options.

    Arguments:
        factory: ``"module:Class"`` of the engine, imported in the worker.
        options: Keyword arguments of the engine (JSON-ready values).
        label: How errors name the synth.
    """

    factory: str
    options: dict = field(default_factory=dict)
    label: str = "synth"

    @property
    def key(self) -> str:
        """Identifies the engine in a worker's cache."""
        return self.factory + json.dumps(self.options, sort_keys=True)


def describe_exit(code: int | None) -> str:
    """Says how a worker process ended, from its exit code.

    Example:
        >>> describe_exit(-11)
        'crashed (signal SIGSEGV)'
        >>> describe_exit(3)
        'exited with status 3'
    """
    if code is None:
        return "is still running"
    if code < 0:
        return f"crashed (signal {signal.Signals(-code).name})"
    return f"exited with status {code}"


class _Worker:
    """One worker process, its pipes and what it is doing."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile()
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        command = [sys.executable, "-m", "flowsynth.synth.worker", str(child_read), str(child_write)]
        self.process = subprocess.Popen(
            command, pass_fds=(child_read, child_write), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log, env=env,
        )  # fmt: skip
        os.close(child_read)
        os.close(child_write)
        self.inbox = Connection(parent_read, writable=False)
        self.outbox = Connection(parent_write, readable=False)
        self.pending: deque[int] = deque()
        self.deadline = float("inf")
        self.loading = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: tuple) -> None:
        self.outbox.send(message)

    def log_tail(self, limit: int = 400) -> str:
        """The last lines the worker wrote to its standard error."""
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(0, self.log.tell() - limit))
        text = self.log.read().decode(errors="replace").strip()
        return f"; its last output: {' | '.join(text.splitlines()[-4:])}" if text else ""

    def stop(self, kill: bool = False) -> int | None:
        """Ends the process (asking first unless ``kill``) and reaps it, so that no zombie stays."""
        if not kill and self.process.poll() is None:
            try:
                self.send(("stop",))
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        for resource in (self.inbox, self.outbox, self.log):
            resource.close()
        return code


class WorkerPool:
    """A few persistent worker processes that render sounds of any :class:`EngineSpec`.

    Arguments:
        num_workers: Number of processes (default: the CPU cores this process may use, at most 8).

    Use it as a context manager or call :meth:`close`; pools still open at exit are closed then, and a
    worker whose parent died ends by itself (its pipe closes).
    """

    def __init__(self, num_workers: int | None = None) -> None:
        self.num_workers = num_workers or usable_cores(8)
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        self._workers: list[_Worker] = []
        self._lock = threading.RLock()  # one job at a time: threads that share a pool take turns
        _POOLS.add(self)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.pid for w in self._workers]

    def close(self) -> None:
        """Stops every worker and waits for it to end."""
        with self._lock:
            while self._workers:
                self._workers.pop().stop()

    def _worker(self) -> _Worker:
        """An idle worker (a new one while there are fewer than ``num_workers``)."""
        if len(self._workers) < self.num_workers:
            self._workers.append(_Worker())
        return self._workers[-1]

    def _replace(self, worker: _Worker, kill: bool) -> int | None:
        self._workers.remove(worker)
        return worker.stop(kill=kill)

    def call(self, spec: EngineSpec, sample_rate: int, method: str, *args: Any, timeout_s: float = 60.0) -> Any:
        """Calls ``method(*args)`` of the engine in a worker and returns its (picklable) result.

        Raises:
            RenderError: If the engine cannot be loaded, the call raises, or the worker dies or hangs.
        """
        with self._lock:
            return self._call(spec, sample_rate, method, args, timeout_s)

    def _call(self, spec: EngineSpec, sample_rate: int, method: str, args: tuple, timeout_s: float) -> Any:
        worker = self._workers[0] if self._workers else self._worker()
        worker.send(("call", spec.factory, spec.options, spec.key, sample_rate, method, args))
        try:
            if not worker.inbox.poll(LOAD_TIMEOUT_S + timeout_s):
                self._replace(worker, kill=True)
                raise RenderError(f"{spec.label}: {method} timed out after {LOAD_TIMEOUT_S + timeout_s:g} s")
            kind, payload = worker.inbox.recv()
        except (EOFError, OSError):
            code, tail = worker.process.wait(), worker.log_tail()
            self._replace(worker, kill=True)
            raise RenderError(f"{spec.label}: the worker {describe_exit(code)} during {method}{tail}") from None
        if kind == "error":
            raise RenderError(f"{spec.label}: {payload}")
        return payload

    def render(
        self,
        spec: EngineSpec,
        values: np.ndarray,
        config: dict,
        seed: int = 0,
        on_error: str = "raise",
        timeout_s: float = 30.0,
    ) -> np.ndarray:
        """Renders one sound per row of ``values`` ``[batch, n]`` (engine units) in the workers.

        Arguments:
            spec: The engine to render with.
            values: What the engine sets for each sound, one row per sound.
            config: :meth:`RenderConfig.describe` of the notes to play.
            seed: Seed of the engine's random sources.
            on_error: ``"raise"`` or ``"nan"`` (a failed sound becomes a row of NaN).
            timeout_s: Seconds one sound may take before its worker is killed.

        Returns:
            float32 audio ``[batch, round(render_s * sample_rate)]``.
        """
        if on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
        with self._lock:
            return _Job(self, spec, np.asarray(values, dtype=np.float64), config, seed, on_error, timeout_s).run()


class _Job:
    """One call of :meth:`WorkerPool.render`: hands out chunks of sounds and collects the audio."""

    def __init__(
        self, pool: WorkerPool, spec: EngineSpec, values: np.ndarray, config: dict, seed: int, on_error: str,
        timeout_s: float,
    ) -> None:  # fmt: skip
        self.pool, self.spec, self.values, self.config = pool, spec, values, config
        self.seed, self.on_error, self.timeout_s = seed, on_error, timeout_s
        num_samples = round(config["render_s"] * config["sample_rate"])
        self.audio = np.zeros((len(values), num_samples), dtype=np.float32)
        size = max(1, min(32, -(-len(values) // pool.num_workers)))
        self.chunks = deque(list(range(i, min(i + size, len(values)))) for i in range(0, len(values), size))
        self.busy: list[_Worker] = []

    def run(self) -> np.ndarray:
        try:
            while self.chunks or self.busy:
                self._dispatch()
                now = time.monotonic()
                ready = wait([w.inbox for w in self.busy], max(0.0, min(w.deadline for w in self.busy) - now))
                for worker in list(self.busy):
                    if worker.inbox in ready:
                        self._receive(worker)
                    elif time.monotonic() > worker.deadline:
                        self._hang(worker)
        except RenderError:
            self._drain()
            raise
        except BaseException:
            for worker in self.busy:
                self.pool._replace(worker, kill=True)
            raise
        return self.audio

    def _drain(self) -> None:
        """Lets the other busy workers finish their chunks (discarded), so that they stay loaded."""
        for worker in self.busy:
            try:
                while worker.inbox.poll(max(0.0, worker.deadline - time.monotonic())):
                    kind = worker.inbox.recv()[0]
                    worker.deadline = time.monotonic() + self.timeout_s
                    if kind in ("done", "error"):
                        break
                else:
                    self.pool._replace(worker, kill=True)
            except (EOFError, OSError):
                self.pool._replace(worker, kill=True)
        self.busy.clear()

    def _dispatch(self) -> None:
        idle = [w for w in self.pool._workers if w not in self.busy]
        while self.chunks and (idle or len(self.pool._workers) < self.pool.num_workers):
            worker = idle.pop() if idle else self.pool._worker()
            indices, spec = self.chunks.popleft(), self.spec
            rows = self.values[indices]
            worker.send(("render", spec.factory, spec.options, spec.key, self.config, self.seed, indices, rows))
            worker.pending, worker.loading = deque(indices), True
            worker.deadline = time.monotonic() + LOAD_TIMEOUT_S + self.timeout_s
            self.busy.append(worker)

    def _receive(self, worker: _Worker) -> None:
        while worker.inbox.poll():
            try:
                kind, *rest = worker.inbox.recv()
            except (EOFError, OSError):
                return self._crash(worker)
            worker.deadline = time.monotonic() + self.timeout_s
            if kind == "loaded":
                worker.loading = False
            elif kind == "sound":
                self.audio[rest[0]] = rest[1]
                worker.pending.popleft()
            elif kind == "sound_error":
                worker.pending.popleft()
                self._fail(rest[0], rest[1])
            elif kind == "error":  # the engine could not be loaded: every sound would fail
                self.busy.remove(worker)
                raise RenderError(f"{self.spec.label}: {rest[0]}")
            elif kind == "done":
                self.busy.remove(worker)
                return None
        return None

    def _crash(self, worker: _Worker) -> None:
        code = worker.process.wait()
        cause = f"the worker {describe_exit(code)}{worker.log_tail()}"
        self._lose(worker, cause, kill=False)

    def _hang(self, worker: _Worker) -> None:
        limit = LOAD_TIMEOUT_S + self.timeout_s if worker.loading else self.timeout_s
        self._lose(worker, f"timed out after {limit:g} s (the worker was killed)", kill=True)

    def _lose(self, worker: _Worker, cause: str, kill: bool) -> None:
        """A worker died or hung: its current sound fails, the rest of its chunk goes back in the queue."""
        self.busy.remove(worker)
        self.pool._replace(worker, kill=kill)
        if worker.loading:
            raise RenderError(f"{self.spec.label}: could not load the synth: {cause}")
        index = worker.pending.popleft()
        if worker.pending:
            self.chunks.appendleft(list(worker.pending))
        self._fail(index, cause)

    def _fail(self, index: int, cause: str) -> None:
        if self.on_error == "raise":
            raise RenderError(f"{self.spec.label}: sound {index} of the batch failed: {cause}")
        self.audio[index] = np.nan


_DEFAULT_POOL: WorkerPool | None = None


def default_pool() -> WorkerPool:
    """The pool that synths share unless they are given one (created on first use, closed at exit)."""
    global _DEFAULT_POOL
    if _DEFAULT_POOL is None:
        _DEFAULT_POOL = WorkerPool()
    return _DEFAULT_POOL


class PooledSynth(Synth):
    """A synth whose engine runs in worker processes (Faust programs, plugins).

    A subclass sets ``name``, ``timeout_s`` (seconds one sound or call may take) and ``_pool`` (None:
    :func:`default_pool`), and defines :attr:`spec`; its :meth:`render_full` hands the engine's values
    to :meth:`render_in_pool`.
    """

    timeout_s: float = 60.0
    _pool: WorkerPool | None = None

    @property
    def pool(self) -> WorkerPool:
        """The worker processes this synth renders in."""
        return self._pool or default_pool()

    @property
    @abc.abstractmethod
    def spec(self) -> EngineSpec:
        """What the workers build to render this synth."""

    def call_engine(self, method: str, *args: Any, sample_rate: int | None = None) -> Any:
        """Calls ``method(*args)`` of the engine in a worker (at the default sample rate unless given)."""
        rate = sample_rate or RenderConfig().sample_rate
        return self.pool.call(self.spec, rate, method, *args, timeout_s=self.timeout_s)

    def render_in_pool(self, values: np.ndarray, config: RenderConfig, seed: int, on_error: OnError) -> Tensor:
        """Renders one sound per row of engine values ``[batch, n]`` in the workers (see :meth:`WorkerPool.render`)."""
        audio = self.pool.render(self.spec, values, config.describe(), seed, on_error, self.timeout_s)
        return torch.from_numpy(audio)


class FaultEngine:
    """The test hook: a sine voice whose ``fault`` value really crashes, hangs or fails its worker.

    Each sound's values are ``[level, fault]``: ``fault`` 0 plays a sine at the note's frequency
    and ``level``; 1 kills the worker with ``SIGSEGV``; 2 sleeps forever; 3 raises ``ValueError``.
    ``on_load`` (``"crash"``, ``"hang"`` or ``"raise"``) fails the loading of the engine instead.

    Example:
        >>> engine = FaultEngine(sample_rate=8000)
        >>> audio = engine.render(np.array([0.5, 0.0]), {"note": 69, "render_s": 0.01}, seed=0)
        >>> audio.shape, round(float(abs(audio).max()), 1)
        ((80,), 0.5)
    """

    def __init__(self, sample_rate: int, on_load: str | None = None) -> None:
        self.sample_rate = sample_rate
        if on_load is not None:
            self._fault(("crash", "hang", "raise").index(on_load) + 1)

    @staticmethod
    def _fault(code: int) -> None:
        if code == 1:
            os.kill(os.getpid(), signal.SIGSEGV)
        if code == 2:
            while True:
                time.sleep(60)
        if code == 3:
            raise ValueError("fault injected by the test hook")

    def render(self, values: np.ndarray, config: dict, seed: int) -> np.ndarray:
        self._fault(round(values[1]))
        t = np.arange(round(config["render_s"] * self.sample_rate)) / self.sample_rate
        frequency_hz = 440.0 * 2.0 ** ((config["note"] - 69.0) / 12.0)
        return (values[0] * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)

    def pid(self) -> int:
        """The worker's process id (tests use it to see that a crashed worker was replaced)."""
        return os.getpid()


def _load(engines: dict, factory: str, options: dict, key: str, sample_rate: int) -> Any:
    """The cached engine ``factory(**options)`` at ``sample_rate``, built on first use (at most 4 kept)."""
    if (key, sample_rate) not in engines:
        import importlib

        module, _, name = factory.partition(":")
        engine_class = getattr(importlib.import_module(module), name)
        if len(engines) >= 4:
            engines.pop(next(iter(engines)))
        engines[key, sample_rate] = engine_class(sample_rate=sample_rate, **options)
    return engines[key, sample_rate]


def _fit(audio: Any, num_samples: int) -> np.ndarray:
    """Mono float32 of exactly ``num_samples`` (cropped or padded with silence)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[:num_samples]
    return np.pad(audio, (0, num_samples - len(audio)))


def _render(outbox: Connection, engine: Any, config: dict, seed: int, indices: list, rows: np.ndarray) -> None:
    num_samples = round(config["render_s"] * config["sample_rate"])
    for index, row in zip(indices, rows, strict=True):
        try:
            audio = _fit(engine.render(row, config, seed), num_samples)
        except Exception as error:  # a failed sound is reported, the worker goes on
            outbox.send(("sound_error", index, f"{type(error).__name__}: {error}"))
        else:
            outbox.send(("sound", index, audio))
    outbox.send(("done",))


def _serve(inbox: Connection, outbox: Connection) -> None:
    """The worker's loop: loads engines, renders sounds and answers calls until told to stop."""
    engines: dict = {}
    while True:
        try:
            message = inbox.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        kind, factory, options, key, *rest = message
        sample_rate = rest[0]["sample_rate"] if kind == "render" else rest[0]
        try:
            engine = _load(engines, factory, options, key, sample_rate)
            result = getattr(engine, rest[1])(*rest[2]) if kind == "call" else None
        except Exception as error:
            outbox.send(("error", f"{type(error).__name__}: {error}"))
            continue
        if kind == "call":
            outbox.send(("result", result))
        else:
            outbox.send(("loaded",))
            _render(outbox, engine, *rest)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
