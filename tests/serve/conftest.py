"""A small flow_dis model (built, not trained: serving does not need a good one) and its instrument."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from flowsynth.control import AnalysisConfig, ControlSetup, Instrument, build_instrument
from flowsynth.features.norm import FeatureNorm
from flowsynth.models import build_model, save_model
from flowsynth.synth import RenderConfig, get_synth

from ..conftest import one_thread

SMALL = {
    "channels": (4, 4, 8, 8),
    "hidden": 16,
    "flow_transforms": 1,
    "flow_hidden": (16,),
    "reg_transforms": 2,
    "reg_flow_hidden": (32, 32),
    "pairs": [["dark", "bright"], ["tonal", "noisy"]],
    "dis_hidden": (16,),
}
#: Sounds of the test model: 1 s, the note held 0.5 s (the protocol's other conditions).
RENDER = RenderConfig(note_s=0.5, render_s=1.0)


@pytest.fixture(scope="module", autouse=True)
def _torch_on_one_thread(torch_on_one_thread: None) -> None:
    """Every test module of this folder runs torch on one thread."""


@pytest.fixture(scope="session")
def serve_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flow_dis checkpoint for builtin-16 with 1-second renders."""
    torch.manual_seed(0)
    with one_thread():
        model = build_model("flow_dis", 16, **SMALL)
    model.set_feature_norm(FeatureNorm(-4.0, 2.5))
    path = tmp_path_factory.mktemp("serve_model") / "model.pt"
    return save_model(path, model, get_synth("builtin-16").describe(), RENDER.describe(), {"note": "untrained"})


@pytest.fixture(scope="session")
def serve_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve_cache")


@pytest.fixture(scope="session")
def setup() -> ControlSetup:
    return ControlSetup(random_presets=32, analysis=AnalysisConfig(anchors=2, steps=3, visible=6))


@pytest.fixture
def instrument(serve_model_path: Path, serve_cache: Path, setup: ControlSetup) -> Instrument:
    """A fresh instrument per test (the measurements come from the session's cache)."""
    with one_thread():
        return build_instrument(serve_model_path, setup, cache_dir=serve_cache)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JACK server (dummy driver, 22,050 Hz, 256-frame periods) under its own name, for this module."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd is not installed (Debian package jackd2)")
    name = f"flowsynth-serve-{os.getpid()}"
    command = [jackd, "--no-realtime", "-n", name, "-d", "dummy", "-r", "22050", "-p", "256"]
    log = tmp_path_factory.mktemp("jack") / "jackd.log"  # a file, not a pipe: a full pipe would stall jackd
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    try:
        _wait_for(name, server, log)
        yield name
    finally:
        server.terminate()
        server.wait(timeout=10)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        if "sounddevice" in sys.modules:  # PortAudio was terminated while JACK ran: start it again without
            sys.modules["sounddevice"]._initialize()


def _wait_for(name: str, server: subprocess.Popen, log: Path) -> None:
    for _ in range(100):
        if server.poll() is not None:
            raise RuntimeError(f"jackd exited: {log.read_text()[-2000:]}")
        ports = subprocess.run(["jack_lsp", "-s", name], capture_output=True, text=True, env=os.environ, check=False)
        if "system:playback_1" in ports.stdout:
            return
        time.sleep(0.1)
    raise AssertionError("the JACK server did not come up")
