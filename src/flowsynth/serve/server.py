"""One process that serves an instrument over OSC, MIDI, audio and the web (``flowsynth serve``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flowsynth.control import Instrument

__all__ = ["ServeConfig", "Server"]


@dataclass(frozen=True)
class ServeConfig:
    """What to serve and where.

    Arguments:
        host: Interface every server binds (``127.0.0.1``: this machine only).
        osc_port: UDP port of the OSC server (None: no OSC; 0: any free port).
        http_port: TCP port of the web page (None: no web page; 0: any free port).
        midi: Listen to MIDI.
        midi_port: Connect to this existing MIDI source instead of opening a port named ``flowsynth``.
        midi_api: ``"alsa"``, ``"jack"`` or None (the system's default).
        audio: Play notes on an audio output.
        audio_device: sounddevice output device (None: the default).
        block_size: Audio frames per callback.
        sample_rate: Audio output rate in Hz (None: the model's).
        record_s: Keep the last ``record_s`` seconds of audio written (meters, tests); 0: none.
        threads: Torch threads of every server thread (None: torch's default; 1 keeps a knob move
            to about a millisecond on a busy machine).
    """

    host: str = "127.0.0.1"
    osc_port: int | None = 9000
    http_port: int | None = 8000
    midi: bool = False
    midi_port: str | None = None
    midi_api: str | None = None
    audio: bool = False
    audio_device: int | str | None = None
    block_size: int = 512
    sample_rate: int | None = None
    record_s: float = 0.0
    threads: int | None = 1


class Server:
    """Starts and stops every face of one instrument together (a context manager).

    Attributes (once started): ``osc``, ``web``, ``midi``, ``engine``, ``output`` (None when off).
    """

    def __init__(self, instrument: Instrument, config: ServeConfig | None = None) -> None:
        self.instrument, self.config = instrument, config or ServeConfig()
        self.osc: Any = None
        self.web: Any = None
        self.midi: Any = None
        self.engine: Any = None
        self.output: Any = None
        self.midi_port_name: str | None = None
        self._stopped = threading.Event()

    def start(self) -> Server:
        """Starts audio, MIDI, OSC and the web page (whatever the config asks); stops all on a failure."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        self.instrument.torch_threads = config.threads
        if config.audio:
            from flowsynth.serve.audio import AudioEngine, AudioOutput

            self.engine = AudioEngine(self.instrument, sample_rate=config.sample_rate)
            self.output = AudioOutput(self.engine, config.audio_device, config.block_size, record_s=config.record_s)
            self.output.start()
        if config.midi:
            from flowsynth.serve.midi import MidiControl

            self.midi = MidiControl(self.instrument, self.engine)
            self.midi_port_name = self.midi.open(config.midi_port, config.midi_api)
        if config.osc_port is not None:
            from flowsynth.serve.osc import OscServer

            self.osc = OscServer(self.instrument, config.host, config.osc_port, self.engine).start()
        if config.http_port is not None:
            from flowsynth.serve.web import WebServer, create_app

            app = create_app(self.instrument, self.engine, self.midi)
            self.web = WebServer(app, config.host, config.http_port).start()

    def stop(self) -> None:
        """Stops everything that runs (safe to call twice)."""
        if self.midi is not None:
            self.midi.close()
        for part in (self.web, self.osc, self.output):
            if part is not None:
                part.stop()
        self.web = self.osc = self.output = self.midi = None
        self._stopped.set()

    def wait(self) -> None:
        """Blocks until :meth:`stop` (or Ctrl-C)."""
        self._stopped.wait()

    def describe(self) -> list[str]:
        """One line per running face: where to reach it."""
        lines = []
        if self.web is not None:
            lines.append(f"web page: {self.web.url}")
        if self.osc is not None:
            from flowsynth.serve.osc import PREFIX

            lines.append(f"OSC: udp://{self.config.host}:{self.osc.port} (addresses {PREFIX}/..., try {PREFIX}/ping)")
        if self.midi is not None:
            lines.append(f"MIDI: input {self.midi_port_name} (CC 21-28 macro knobs, 41-46 semantic, 1 morph)")
        if self.output is not None:
            lines.append(f"audio: {self.engine.sample_rate} Hz, {self.config.block_size}-frame blocks")
        return lines

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
