"""Serve: an instrument over OSC, MIDI, live audio and a web page, in one process (``flowsynth serve``).

Each face lives in its own module and imports its dependency lazily (python-osc, mido, sounddevice,
FastAPI/uvicorn): :class:`~flowsynth.serve.osc.OscServer`, :class:`~flowsynth.serve.midi.MidiControl`,
:class:`~flowsynth.serve.audio.AudioEngine` / :class:`~flowsynth.serve.audio.AudioOutput`,
:func:`~flowsynth.serve.web.create_app` / :class:`~flowsynth.serve.web.WebServer`; :class:`Server`
starts the ones a :class:`ServeConfig` asks for.
"""

from flowsynth.serve.server import ServeConfig, Server

__all__ = ["ServeConfig", "Server"]
