"""The web page: a FastAPI app (JSON API + a plain HTML/JS page) served by uvicorn in a thread.

API (JSON bodies and replies; a mistake is answered ``400 {"error": "..."}``):

* ``GET /api/state``: the instrument's state (knobs, parameters, preset, map position), the MIDI map
  and whether the server plays audio.
* ``POST /api/macro {"index", "value"}``, ``POST /api/macros {"values": {"0": v, ...}}``,
  ``POST /api/semantic {"index", "value"}``, ``POST /api/freeze {"freeze"}``,
  ``POST /api/preset {"key"}`` (index or name), ``POST /api/path {"start", "end", "steps", "method"}``
  (``"straight"``, the default, or ``"geodesic"``),
  ``POST /api/morph {"t"}``, ``POST /api/match`` (a sound file, multipart field ``file``): each returns
  the new state.
* ``POST /api/note {"note", "velocity"}`` / ``POST /api/note_off {"note"}``: play on the server's audio.
* ``POST /api/midi/learn {"kind", "index"}``: MIDI learn.
* ``GET /api/map``: the preset map's points. ``GET /api/audio.wav``: the current sound (16-bit WAV).
  ``GET /api/preset.json``: the current sound as a preset file (a download).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time,
# and UploadFile / Request are imported inside create_app (FastAPI is an optional dependency).
import io
import tempfile
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from flowsynth.control import Instrument
from flowsynth.errors import FlowsynthError
from flowsynth.serve.osc import NotePlayer

__all__ = ["MAX_UPLOAD_BYTES", "WebServer", "create_app"]

#: Largest sound file accepted by ``/api/match``.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class _AudioCache:
    """The WAV bytes of the current sound, rendered once per state version."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._lock = threading.Lock()
        self._version, self._wav = -1, b""

    def wav(self) -> tuple[int, bytes]:
        with self._lock:
            version = self.instrument.version
            if version != self._version:
                audio = self.instrument.render().numpy()
                self._version, self._wav = version, _wav_bytes(audio, self.instrument.space.sample_rate)
            return self._version, self._wav


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def create_app(
    instrument: Instrument,
    player: NotePlayer | None = None,
    midi: Any = None,
    matcher: Callable[[Path], None] | None = None,
) -> Any:
    """The FastAPI app of the page and its API (see the module docstring).

    Arguments:
        instrument: The instrument.
        player: Plays notes on the server (None: audio off).
        midi: The :class:`~flowsynth.serve.midi.MidiControl` (None: MIDI off).
        matcher: Moves the instrument to a dropped sound file (None: :meth:`Instrument.match_sound`,
            flowsynth's sound matching).
    """
    from fastapi import FastAPI, Request, UploadFile
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="flowsynth", docs_url=None, redoc_url=None)
    static = Path(str(resources.files("flowsynth.serve") / "static"))
    app.mount("/static", StaticFiles(directory=static), name="static")
    audio = _AudioCache(instrument)

    def state() -> dict[str, Any]:
        midi_state = midi.describe() if midi is not None else None
        return instrument.state() | {"audio": player is not None, "midi": midi_state}

    async def bad_request(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    app.add_exception_handler(ValueError, bad_request)
    app.add_exception_handler(FlowsynthError, bad_request)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/state")
    def get_state() -> dict[str, Any]:
        return state()

    @app.post("/api/macro")
    def macro(body: dict[str, Any]) -> dict[str, Any]:
        instrument.set_macro(_int(body, "index"), _float(body, "value"))
        return state()

    @app.post("/api/macros")
    def macros(body: dict[str, Any]) -> dict[str, Any]:
        values = body.get("values")
        if not isinstance(values, dict) or not values:
            raise ValueError('"values" must be an object {"knob index": value in [-1, 1], ...}')
        instrument.set_macros({_int({"index": _digits(k)}, "index"): _float({"v": v}, "v") for k, v in values.items()})
        return state()

    @app.post("/api/semantic")
    def semantic(body: dict[str, Any]) -> dict[str, Any]:
        instrument.set_semantic({_int(body, "index"): _float(body, "value")})
        return state()

    @app.post("/api/freeze")
    def freeze(body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("freeze"), bool):
            raise ValueError('"freeze" must be true or false')
        instrument.set_freeze(body["freeze"])
        return state()

    @app.post("/api/preset")
    def preset(body: dict[str, Any]) -> dict[str, Any]:
        key = body.get("key")
        if not isinstance(key, int | str) or isinstance(key, bool):
            raise ValueError('"key" must be a preset index or name')
        instrument.load_preset(key)
        return state()

    @app.post("/api/path")
    def path(body: dict[str, Any]) -> dict[str, Any]:
        steps = _int(body | {"steps": body.get("steps", 9)}, "steps")
        method = body.get("method", "straight")
        if not isinstance(method, str):
            raise ValueError('"method" must be "straight" or "geodesic"')
        instrument.set_path(body.get("start"), body.get("end"), steps, method)  # type: ignore[arg-type]
        return state()

    @app.post("/api/morph")
    def morph(body: dict[str, Any]) -> dict[str, Any]:
        instrument.morph(_float(body, "t"))
        return state()

    @app.post("/api/match")
    async def match(file: UploadFile) -> dict[str, Any]:
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the sound file is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
        suffix = Path(file.filename or "sound.wav").suffix[:10] or ".wav"
        with tempfile.TemporaryDirectory() as folder:
            saved = Path(folder) / f"{Path(file.filename or 'sound').stem[:80] or 'sound'}{suffix}"
            saved.write_bytes(data)
            await run_in_threadpool(_match, instrument, saved, matcher)  # matching takes a second: others go on
        return state()

    @app.post("/api/note")
    def note(body: dict[str, Any]) -> dict[str, Any]:
        if player is None:
            raise ValueError("audio is off: start the server with --audio to play notes on it")
        player.note_on(_int(body, "note"), _int(body | {"velocity": body.get("velocity", 100)}, "velocity"))
        return {"ok": True}

    @app.post("/api/note_off")
    def note_off(body: dict[str, Any]) -> dict[str, Any]:
        if player is not None:
            player.note_off(_int(body, "note"))
        return {"ok": True}

    @app.post("/api/midi/learn")
    def midi_learn(body: dict[str, Any]) -> dict[str, Any]:
        if midi is None:
            raise ValueError("MIDI is off: start the server with --midi")
        midi.learn(str(body.get("kind")), _int(body, "index"))
        return state()

    @app.get("/api/map")
    def preset_map() -> dict[str, Any]:
        return instrument.map.to_json() if instrument.map else {"points": [], "explained": [0, 0], "descriptors": []}

    @app.get("/api/audio.wav")
    def audio_wav() -> Response:
        version, wav = audio.wav()
        headers = {"Cache-Control": "no-store", "X-Flowsynth-Version": str(version)}
        return Response(wav, media_type="audio/wav", headers=headers)

    @app.get("/api/preset.json")
    def preset_json() -> JSONResponse:
        data = instrument.preset_json()
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(data["name"]))[:60] or "preset"
        return JSONResponse(data, headers={"Content-Disposition": f'attachment; filename="{name}.json"'})

    return app


def _match(instrument: Instrument, path: Path, matcher: Callable[[Path], None] | None) -> None:
    if matcher is not None:
        matcher(path)
    else:
        instrument.match_sound(path)


def _digits(key: Any) -> int:
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        return int(key)
    raise ValueError(f"knob indices are integers, got {key!r}")


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'"{key}" must be an integer, got {value!r}')
    return value


def _float(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f'"{key}" must be a number, got {value!r}')
    return float(value)


class WebServer:
    """Runs the app with uvicorn in a background thread.

    Arguments:
        app: The app (:func:`create_app`).
        host: Interface to bind.
        port: TCP port (0: any free port; see :attr:`port` after :meth:`start`).
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout_s: float = 10.0) -> "WebServer":
        import time

        self._thread.start()
        deadline = time.perf_counter() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.perf_counter() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        self._socket.close()
