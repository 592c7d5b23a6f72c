"""The web API over real HTTP (uvicorn on a free port): knobs, presets, paths, sound matching, downloads."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile

from flowsynth.control import Instrument
from flowsynth.serve.web import WebServer, create_app


@pytest.fixture
def web(instrument: Instrument) -> Iterator[WebServer]:
    server = WebServer(create_app(instrument), port=0).start()
    try:
        yield server
    finally:
        server.stop()


def call(
    web: WebServer, path: str, body: Any = None, data: bytes | None = None, headers: dict | None = None
) -> tuple[int, Any, dict]:
    """(status, parsed JSON or raw bytes, headers) of one request."""
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    request = urllib.request.Request(web.url.rstrip("/") + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, head = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, head = error.code, error.read(), dict(error.headers)
    kind = head.get("content-type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw, head


def test_page_and_state(web: WebServer) -> None:
    status, page, _ = call(web, "/")
    assert status == 200 and b"<title>flowsynth</title>" in page
    status, script, _ = call(web, "/static/app.js")
    assert status == 200 and b"/api/macro" in script
    status, state, _ = call(web, "/api/state")
    assert status == 200 and state["audio"] is False and state["midi"] is None and len(state["macros"]) == 16


def test_knobs_change_the_parameters_and_the_sound(web: WebServer, instrument: Instrument) -> None:
    _, before, _ = call(web, "/api/state")
    _, wav_before, _ = call(web, "/api/audio.wav")
    status, after, _ = call(web, "/api/macro", {"index": 0, "value": -0.9})
    assert status == 200 and after["params"] != before["params"] and after["version"] > before["version"]
    _, wav_after, head_after = call(web, "/api/audio.wav")
    assert int(head_after["x-flowsynth-version"]) == after["version"]
    audio, rate = soundfile.read(io.BytesIO(wav_after))
    assert rate == 22050 and len(audio) == 22050 and wav_after != wav_before
    status, state, _ = call(web, "/api/macros", {"values": {"1": 0.5, "2": -0.25}})
    assert [m["value"] for m in state["macros"][1:3]] == pytest.approx([0.5, -0.25], abs=1e-5)
    _, state, _ = call(web, "/api/semantic", {"index": 0, "value": 0.4})
    assert state["semantic"][0]["value"] == pytest.approx(0.4, abs=1e-4)
    _, state, _ = call(web, "/api/freeze", {"freeze": False})
    assert state["freeze"] is False and instrument.freeze is False


def test_presets_map_paths_and_download(web: WebServer) -> None:
    _, points, _ = call(web, "/api/map")
    assert len(points["points"]) == 32 and {"i", "name", "x", "y"} <= set(points["points"][0])
    _, state, _ = call(web, "/api/preset", {"key": 5})
    assert state["preset"] == "random #5"
    assert state["map_xy"] == pytest.approx([points["points"][5]["x"], points["points"][5]["y"]], abs=1e-3)
    _, state, _ = call(web, "/api/path", {"start": "random #1", "end": 2, "steps": 5})
    assert state["path"] == {"from": "random #1", "to": "random #2", "method": "straight"}
    _, state, _ = call(web, "/api/path", {"start": "random #1", "end": 2, "steps": 5, "method": "geodesic"})
    assert state["path"]["method"] == "geodesic"
    _, state, _ = call(web, "/api/morph", {"t": 0.5})
    assert "@ 0.500" in state["preset"]
    status, preset, head = call(web, "/api/preset.json")
    assert status == 200 and head["content-disposition"].startswith("attachment; filename=")
    assert len(preset["normalized"]) == 16 and "filter_cutoff" in preset["params"]


def _multipart(path: Path) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
    body = (head + "Content-Type: audio/wav\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_a_dropped_sound_is_matched(web: WebServer, render_gm_note) -> None:
    path = render_gm_note(16)
    data, headers = _multipart(path)
    status, state, _ = call(web, "/api/match", data=data, headers=headers)
    assert status == 200 and state["preset"] == path.stem, state


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/macro", {"index": 0, "value": 3}, "knob value must be in [-1, 1]"),
        ("/api/macro", {"index": "zero", "value": 0}, '"index" must be an integer'),
        ("/api/macros", {"values": []}, '"values" must be an object'),
        ("/api/preset", {"key": None}, '"key" must be a preset index or name'),
        ("/api/preset", {"key": 999}, "out of range"),
        ("/api/morph", {"t": 0.5}, "no interpolation path yet"),
        ("/api/path", {"start": 0, "end": 1, "method": "curvy"}, "unknown path method 'curvy'"),
        ("/api/path", {"start": 0, "end": 1, "method": 2}, '"method" must be "straight" or "geodesic"'),
        ("/api/note", {"note": 60}, "audio is off"),
        ("/api/midi/learn", {"kind": "macro", "index": 0}, "MIDI is off"),
        ("/api/freeze", {"freeze": "yes"}, '"freeze" must be true or false'),
    ],
)
def test_mistakes_are_400_with_the_reason(web: WebServer, path: str, body: dict, message: str) -> None:
    status, reply, _ = call(web, path, body)
    assert status == 400 and message in reply["error"]


def test_a_file_that_is_not_a_sound_is_refused(web: WebServer, tmp_path: Path) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio")
    data, headers = _multipart(fake)
    status, reply, _ = call(web, "/api/match", data=data, headers=headers)
    assert status == 400 and "notes.wav" in reply["error"]


def test_the_page_answers_while_a_sound_is_matched(instrument: Instrument, render_gm_note) -> None:
    """Matching runs beside the event loop: the state and the knobs answer before it ends."""
    started, release = threading.Event(), threading.Event()

    def slow_matcher(path: Path) -> None:
        started.set()
        assert release.wait(30.0), "the test never let the match end"
        instrument.load_preset(1)

    server = WebServer(create_app(instrument, matcher=slow_matcher), port=0).start()
    try:
        data, headers = _multipart(render_gm_note(16))
        matched: list[Any] = []
        dropping = threading.Thread(
            target=lambda: matched.append(call(server, "/api/match", data=data, headers=headers))
        )
        dropping.start()
        assert started.wait(30.0)
        status, state, _ = call(server, "/api/macro", {"index": 0, "value": 0.5})
        assert status == 200 and state["macros"][0]["value"] == pytest.approx(0.5)
        assert not matched, "the knob moved while the match was still running"
        release.set()
        dropping.join(30.0)
        assert matched and matched[0][0] == 200
    finally:
        release.set()
        server.stop()
