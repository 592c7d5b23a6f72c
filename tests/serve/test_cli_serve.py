"""``flowsynth serve`` as a user runs it: a separate process, reachable over OSC and HTTP, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from flowsynth.cli.main import build_parser


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_control_commands_are_registered() -> None:
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"serve", "macro", "interpolate", "map"} <= set(choices)


def test_serve_answers_osc_and_http_then_stops_on_ctrl_c(serve_model_path: Path, tmp_path: Path) -> None:
    osc_port, http_port = _free(socket.SOCK_DGRAM), _free(socket.SOCK_STREAM)
    command = [sys.executable, "-m", "flowsynth.cli.main", "serve", "--model", str(serve_model_path)]
    command += ["--osc-port", str(osc_port), "--http-port", str(http_port), "--anchors", "2", "--sweep-steps", "3"]
    command += ["--cache-dir", str(tmp_path / "cache")]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        while not any(line.startswith("Ctrl-C stops") for line in lines):
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, f"serve exited early: {''.join(lines)}"
            lines.append(line)
        assert f"web page: http://127.0.0.1:{http_port}/" in "".join(lines)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(10.0)
            builder = OscMessageBuilder("/flowsynth/v1/macro")
            builder.add_arg(0)
            builder.add_arg(0.5)
            client.sendto(builder.build().dgram, ("127.0.0.1", osc_port))
            reply = OscMessage(client.recvfrom(65536)[0])
        assert reply.address == "/flowsynth/v1/params" and len(reply.params) == 16
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/state", timeout=10) as response:
            state = json.loads(response.read())
        assert state["macros"][0]["value"] == 0.5 and state["params"] == [round(v, 6) for v in reply.params]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:  # nothing listens there any more
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (closed connections may linger in TIME_WAIT)
        again.bind(("127.0.0.1", http_port))


def test_serve_refuses_a_port_in_use(serve_model_path: Path, tmp_path: Path) -> None:
    from flowsynth.cli.main import main

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        args = ["serve", "--model", str(serve_model_path), "--osc-port", str(port), "--no-web"]
        assert main([*args, "--anchors", "2", "--sweep-steps", "3", "--cache-dir", str(tmp_path)]) == 2
