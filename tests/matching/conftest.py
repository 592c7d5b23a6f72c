"""Fixtures for matching: a small model checkpoint of the built-in synth, and real voice recordings.

The model is a ``flow_reg`` of ``builtin-16`` built small and not trained (training is the models'
tests' business); its feature normalization is fitted on real renders of the synth and it is saved
and loaded through the checkpoint format, so the matching code sees exactly what a trained model
gives it. Voice sounds are spoken by espeak-ng (phoneme input, so the vowels and consonants are held)
and shaped by sox, on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from flowsynth.features import FeatureNorm, log_mel
from flowsynth.matching.optim import single_thread
from flowsynth.models import build_model, load_model, save_model
from flowsynth.synth import RenderConfig, Synth, get_synth

#: Voice-like sounds: name -> (espeak-ng phonemes, espeak-ng options, sox effects).
VOICES = {
    "wooo": ("[[wu::::::]]", ["-v", "en", "-s", "60"], []),
    "tsss": ("[[ts::::::]]", ["-v", "en", "-s", "60"], []),
    "bwaaa": ("[[bwA::::::]]", ["-v", "en+f3", "-s", "60", "-p", "70"], []),
    # a held "ooo" with a 5 Hz, +-60 cent vibrato made by sox's bend
    "ooo_vibrato": (
        "[[u::::::::]]",
        ["-v", "en", "-s", "50"],
        ["bend", "0.2,60,0.1", *(["0,-120,0.1", "0,120,0.1"] * 6)],
    ),
}


@pytest.fixture(scope="session")
def synth16() -> Synth:
    """The built-in synth with its 16 most important parameters learned."""
    return get_synth("builtin-16")


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory, synth16: Synth) -> Path:
    """A small ``flow_reg`` checkpoint for ``builtin-16`` (untrained; feature norm fitted on 8 renders)."""
    torch.manual_seed(0)
    model = build_model(
        "flow_reg", 16, channels=(4, 4, 4, 4), hidden=16, flow_transforms=1, reg_transforms=2, reg_flow_hidden=(16,)
    )
    with torch.no_grad(), single_thread():
        audio = synth16.render(torch.rand(8, 16, generator=torch.Generator().manual_seed(0)))
    model.set_feature_norm(FeatureNorm().fit(log_mel(audio)))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, model, synth16.describe(), RenderConfig().describe(), {"note": "untrained test model"})
    return path


@pytest.fixture(scope="session")
def model(model_path: Path):
    """The small model, loaded from its checkpoint."""
    return load_model(model_path)


@pytest.fixture(scope="session")
def voice_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real voice recordings (espeak-ng through sox, mono 22,050 Hz wav) by name, see :data:`VOICES`."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        pytest.skip("espeak-ng and sox are needed: install the Debian packages espeak-ng and sox (make setup does)")
    folder = tmp_path_factory.mktemp("voices")
    paths = {}
    for name, (phonemes, options, effects) in VOICES.items():
        raw, out = folder / f"{name}.raw.wav", folder / f"{name}.wav"
        subprocess.run([espeak, *options, "-w", str(raw), phonemes], check=True, timeout=60)
        subprocess.run([sox, str(raw), "-r", "22050", "-c", "1", str(out), *effects], check=True, timeout=60)
        paths[name] = out
    return paths


@pytest.fixture(autouse=True)
def one_thread():
    """Runs each test on one torch thread (the machine's cores are shared), restoring the count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
