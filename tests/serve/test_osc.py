"""The OSC address space over real UDP sockets: every request, and hostile traffic that must not stop it."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from flowsynth.control import Instrument
from flowsynth.control import instrument as instrument_module
from flowsynth.serve.osc import PREFIX, OscServer


class Client:
    """A UDP OSC client that reads the replies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)

    def raw(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def send(self, address: str, *args: Any) -> None:
        builder = OscMessageBuilder(
            address if address.startswith("/flowsynth") or address == "/x" else PREFIX + address
        )
        for arg in args:
            builder.add_arg(arg)
        self.raw(builder.build().dgram)

    def replies(self, count: int, sock: socket.socket | None = None) -> list[tuple[str, list[Any]]]:
        out = []
        for _ in range(count):
            message = OscMessage((sock or self.sock).recvfrom(65536)[0])
            out.append((message.address.removeprefix(PREFIX), list(message.params)))
        return out

    def ask(self, address: str, *args: Any, count: int = 1) -> list[tuple[str, list[Any]]]:
        self.send(address, *args)
        return self.replies(count)


@pytest.fixture
def served(instrument: Instrument) -> Iterator[tuple[OscServer, Client]]:
    instrument.torch_threads = 1  # the server's threads too
    server = OscServer(instrument, port=0).start()
    client = Client(server.port)
    try:
        yield server, client
    finally:
        server.stop()
        client.sock.close()


def test_ping_and_the_knob_requests(served: tuple[OscServer, Client], instrument: Instrument) -> None:
    _, client = served
    assert client.ask("/ping") == [("/pong", ["1"])]
    (params, p), (knobs, k) = client.ask("/macro", 0, 0.75, count=2)
    assert params == "/params" and len(p) == 16 and p == pytest.approx(instrument.params.tolist(), abs=1e-6)
    assert knobs == "/knobs" and k[0] == pytest.approx(0.75, abs=1e-5) and len(k) == 16 + 2
    (_, p2), _ = client.ask("/decode", -0.5, 0.5, 0.25, count=2)
    assert instrument.state()["macros"][2]["value"] == pytest.approx(0.25, abs=1e-5) and p2 != p
    _, (_, k3) = client.ask("/semantic", 1, -0.5, count=2)
    assert k3[-1] == pytest.approx(-0.5, abs=1e-4)
    (_, p4), _ = client.ask("/latent", *([0.1] * 16), count=2)
    assert p4 == pytest.approx(instrument.space.to_params(instrument.latent[None])[0].tolist(), abs=1e-6)
    assert client.ask("/freeze", 0) == [("/freeze", [0])] and instrument.freeze is False


def test_presets_paths_and_state(served: tuple[OscServer, Client], instrument: Instrument) -> None:
    _, client = served
    (preset, name), _, _ = client.ask("/load_preset", "random #3", count=3)
    assert preset == "/preset" and name == ["random #3"] and instrument.name == "random #3"
    replies = client.ask("/interpolate", 2, "random #7", 5, count=7)
    assert replies[0] == ("/path/begin", [5]) and replies[-1] == ("/path/end", [])
    assert [r[1][0] for r in replies[1:6]] == [0, 1, 2, 3, 4] and all(len(r[1]) == 17 for r in replies[1:6])
    (_, end), _ = client.ask("/morph", 1.0, count=2)
    assert end == pytest.approx(replies[5][1][1:], abs=1e-5)
    (state, (text,)), (_, p), (latent, z), _ = client.ask("/get_state", count=4)
    data = json.loads(text)
    assert state == "/state" and latent == "/latent" and len(z) == 16 and data["path"]["to"] == "random #7"
    assert p == pytest.approx(data["params"], abs=1e-5)
    bent = client.ask("/interpolate", 2, "random #7", 5, "geodesic", count=7)
    assert bent[0] == ("/path/begin", [5]) and bent[5][1] == pytest.approx(replies[5][1], abs=1e-5)
    assert bent[3][1] != pytest.approx(replies[3][1], abs=1e-3)  # the middle step moved
    (state, (text,)), *_ = client.ask("/get_state", count=4)
    assert json.loads(text)["path"]["method"] == "geodesic"


@pytest.mark.parametrize("address", ["/encode", "/match"])
def test_a_recorded_sound_is_encoded_or_matched(
    served: tuple[OscServer, Client], instrument: Instrument, render_gm_note, address: str
) -> None:
    _, client = served
    path = render_gm_note(48)
    (params, p), (latent, z), (knobs, _) = client.ask(address, str(path), count=3)
    assert (params, latent, knobs) == ("/params", "/latent", "/knobs") and instrument.name == path.stem
    assert len(z) == 16 and p == pytest.approx(instrument.params.tolist(), abs=1e-6)


class Held(NamedTuple):
    """Events around a geodesic path's computation: one has begun, and it may go on."""

    begun: threading.Event
    release: threading.Event


@pytest.fixture
def held_geodesics(monkeypatch: pytest.MonkeyPatch) -> Held:
    """Geodesic paths are computed only once ``release`` is set (or after 10 s)."""
    held, compute = Held(threading.Event(), threading.Event()), instrument_module.latent_path_between

    def wait_then_compute(space: Any, z_a: Any, z_b: Any, steps: int = 9, method: str = "straight") -> Any:
        if method == "geodesic":
            held.begun.set()
            held.release.wait(timeout=10.0)
        return compute(space, z_a, z_b, steps, method)

    monkeypatch.setattr(instrument_module, "latent_path_between", wait_then_compute)
    return held


def _kinds(replies: list[tuple[str, list[Any]]]) -> list[str]:
    return [address for address, _ in replies]


PATH_OF_5 = ["/path/begin", *["/path/step"] * 5, "/path/end"]


def test_other_messages_are_answered_while_a_path_is_computed(
    served: tuple[OscServer, Client], instrument: Instrument, held_geodesics: Held
) -> None:
    _, client = served
    straight = client.ask("/interpolate", 0, 1, 5, count=7)
    client.send("/interpolate", 2, 3, 5, "geodesic")
    client.send("/ping")
    client.send("/macro", 0, 0.5)  # the instrument's lock is free while the path is computed
    client.send("/morph", 1.0)  # on the straight path still
    early = client.replies(5)
    assert instrument.state()["path"]["method"] == "straight"
    held_geodesics.release.set()
    replies = early + client.replies(7)
    assert _kinds(replies) == ["/pong", "/params", "/knobs", "/params", "/knobs", *PATH_OF_5]
    assert replies[3][1] == pytest.approx(straight[5][1][1:], abs=1e-5)
    assert instrument.state()["path"] == {"from": "random #2", "to": "random #3", "method": "geodesic"}


def test_slow_requests_are_answered_in_order_and_a_failing_one_with_an_error(
    served: tuple[OscServer, Client], instrument: Instrument, held_geodesics: Held
) -> None:
    server, client = served
    client.send("/interpolate", 0, 1, 5, "geodesic")
    client.send("/interpolate", 0, "nowhere", 5, "geodesic")
    client.send("/interpolate", 1, 0, 5)  # straight, but after the geodesic ones
    ((error, (_, reason)),) = client.ask("/morph", 0.5)
    assert error == "/error" and "no interpolation path yet" in reason
    held_geodesics.release.set()
    replies = client.replies(7 + 1 + 7)
    assert _kinds(replies) == [*PATH_OF_5, "/error", *PATH_OF_5]
    assert replies[7][1][0] == PREFIX + "/interpolate" and "no preset named 'nowhere'" in replies[7][1][1]
    assert instrument.state()["path"] == {"from": "random #1", "to": "random #0", "method": "straight"}
    assert client.ask("/ping") == [("/pong", ["1"])] and server.errors == 2


def test_stop_drops_the_waiting_slow_requests(instrument: Instrument, held_geodesics: Held) -> None:
    server = OscServer(instrument, port=0).start()
    client = Client(server.port)
    with client.sock:
        client.send("/interpolate", 0, 1, 5, "geodesic")
        client.send("/interpolate", 2, 3, 5, "geodesic")
        assert client.ask("/ping") == [("/pong", ["1"])]
        assert held_geodesics.begun.wait(timeout=10.0)  # the first one runs, the second waits
        held_geodesics.release.set()
        server.stop()
    assert not server._worker.is_alive() and not server._thread.is_alive()
    assert instrument.state()["path"]["to"] == "random #1"


def test_replies_go_where_reply_to_says(served: tuple[OscServer, Client]) -> None:
    _, client = served
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(3.0)
    with listener:
        port = listener.getsockname()[1]
        client.send("/reply_to", port)
        assert client.replies(1, listener) == [("/reply_to", [port])]
        client.send("/ping")
        assert client.replies(1, listener) == [("/pong", ["1"])]


def _bundle(timetag: int, *elements: bytes) -> bytes:
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return b"#bundle\x00" + struct.pack(">Q", timetag) + body


def _message(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(PREFIX + address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


HOSTILE: list[tuple[str, bytes, str]] = [
    ("garbage", b"\xff\xfe not osc at all", "undecodable OSC packet"),
    ("truncated", _message("/macro", 0, 0.5)[:26], "undecodable OSC packet"),
    ("empty", b"", "undecodable OSC packet"),
    ("unknown address", _message("/self_destruct"), "unknown address"),
    ("outside the prefix", OscMessageBuilder("/x").build().dgram, "addresses start with /flowsynth/v1/"),
    ("string for a number", _message("/macro", 0, "loud"), "must be a finite number"),
    ("NaN", _message("/macro", 0, float("nan")), "must be a finite number"),
    ("infinity", _message("/decode", float("inf")), "must be a finite number"),
    ("index out of range", _message("/macro", 99, 0.1), "macro index must be an integer in [0, 15]"),
    ("missing arguments", _message("/macro"), "/macro takes a knob index"),
    ("too many knobs", _message("/decode", *([0.0] * 17)), "/decode takes 1 to 16 knob values"),
    ("too many arguments", _message("/decode", *([0.0] * 600)), "too many arguments"),
    ("huge latent", _message("/latent", *([1e30] * 16)), "latent value must be in"),
    ("blob", _message("/load_preset", b"\x00\x01"), "/load_preset takes one preset index"),
    ("missing file", _message("/encode", "/nonexistent/sound.wav"), "no sound file at"),
    ("not a sound", _message("/encode", "/etc/hostname"), ""),
    ("not a sound to match", _message("/match", "/etc/hostname"), ""),
    ("no such preset", _message("/load_preset", "x" * 10000), "no preset named"),
    ("huge path", _message("/interpolate", 0, 1, 100000), "steps must be an integer in [3, 257]"),
    ("unknown path method", _message("/interpolate", 0, 1, 5, "curvy"), "unknown path method 'curvy'"),
    ("geodesic to no preset", _message("/interpolate", 0, "nowhere", 5, "geodesic"), "no preset named 'nowhere'"),
    ("path method not a name", _message("/interpolate", 0, 1, 5, 3), "path method must be one of straight"),
    ("morph without a path", _message("/morph", 0.5), "no interpolation path yet"),
    ("note without audio", _message("/note", 60), "audio is off"),
    ("bad port", _message("/reply_to", 0), "/reply_to takes one UDP port"),
    ("bundle far in the future", _bundle(2**63, _message("/macro", 0, 9.0)), "must be in [-1, 1]"),
]


@pytest.mark.parametrize(("case", "packet", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_packets_get_an_error_and_the_server_goes_on(
    served: tuple[OscServer, Client], case: str, packet: bytes, reason: str
) -> None:
    server, client = served
    if case == "morph without a path":
        server.instrument._path = None
    start = time.perf_counter()
    client.raw(packet)
    ((address, (_, message)),) = client.replies(1)
    assert address == "/error" and reason in message, message
    assert time.perf_counter() - start < 2.0
    assert client.ask("/ping") == [("/pong", ["1"])]
    assert server.errors >= 1


def test_the_port_is_free_after_stop(instrument: Instrument) -> None:
    server = OscServer(instrument, port=0).start()
    port = server.port
    server.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))
