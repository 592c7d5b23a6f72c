"""Shared fixtures: torch on one thread, and real recorded sounds from the Debian packages that ``make setup`` installs.

Drum hits come from hydrogen-drumkits; instrument notes are rendered from the General MIDI sampled
soundfont of timgm6mb-soundfont with fluidsynth; speech comes from espeak-ng. A fixture skips, naming
the missing package, only when that package is absent.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

DRUMKIT_DIR = Path("/usr/share/hydrogen/data/drumkits/ColomboAcousticDrumkit")
#: Stereo 44.1 kHz FLAC hits of one acoustic kit.
DRUM_FILES = {
    "kick": "bassdrum-4mics-br-stereo-normal3.flac",
    "snare": "snare-opaque-normal-mic-normal_shot2.flac",
    "hihat": "hihat-closed-1.flac",
    "hihat_open": "hihat-open-1.flac",
}
GM_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")

#: Renders a General MIDI note: ``(program, note=60, velocity=100, note_s=1.0) -> path of a 22.05 kHz wav``.
RenderNote = Callable[..., Path]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread (the machine is shared; small tensors gain nothing from more), then as before."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def torch_on_one_thread() -> Iterator[None]:
    """Torch on one thread for a whole test module; a folder's conftest makes it autouse for its modules."""
    with one_thread():
        yield


def _require(path: Path, package: str) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: install the Debian package {package} (make setup does)")
    return path


def _require_program(name: str, package: str) -> str:
    program = shutil.which(name)
    if program is None:
        pytest.skip(f"`{name}` is missing: install the Debian package {package} (make setup does)")
    return program


@pytest.fixture(scope="session")
def drum_paths() -> dict[str, Path]:
    """Paths of real drum hits by name: ``kick``, ``snare``, ``hihat`` (closed), ``hihat_open``."""
    return {name: _require(DRUMKIT_DIR / file, "hydrogen-drumkits") for name, file in DRUM_FILES.items()}


@pytest.fixture(scope="session")
def kick_path(drum_paths: dict[str, Path]) -> Path:
    """A real bass drum hit (stereo FLAC, 44.1 kHz, 0.7 s)."""
    return drum_paths["kick"]


@pytest.fixture(scope="session")
def snare_path(drum_paths: dict[str, Path]) -> Path:
    """A real snare drum hit (stereo FLAC, 44.1 kHz, 1.0 s)."""
    return drum_paths["snare"]


@pytest.fixture(scope="session")
def hihat_path(drum_paths: dict[str, Path]) -> Path:
    """A real closed hi-hat hit (stereo FLAC, 44.1 kHz, 0.65 s)."""
    return drum_paths["hihat"]


def _midi_note_file(program: int, note: int, velocity: int, note_s: float, tail_s: float) -> bytes:
    """A one-track Standard MIDI File: program change, one note held ``note_s``, then ``tail_s`` of rest."""
    ticks_per_s = 960  # 480 ticks per quarter note at the default 120 bpm

    def event(delta_s: float, data: bytes) -> bytes:
        ticks, out = round(delta_s * ticks_per_s), []
        out.append(ticks & 0x7F)
        while ticks := ticks >> 7:
            out.append((ticks & 0x7F) | 0x80)
        return bytes(reversed(out)) + data

    track = (
        event(0, bytes([0xC0, program]))
        + event(0, bytes([0x90, note, velocity]))
        + event(note_s, bytes([0x80, note, 0]))
        + event(tail_s, bytes([0xFF, 0x2F, 0]))
    )
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


@pytest.fixture(scope="session")
def render_gm_note(tmp_path_factory: pytest.TempPathFactory) -> RenderNote:
    """Renders a General MIDI note of the TimGM6mb sampled soundfont with fluidsynth (no reverb or chorus).

    Call it as ``render_gm_note(program, note=60, velocity=100, note_s=1.0)``; it returns the path of
    a stereo 16-bit wav at 22,050 Hz, about ``note_s + 2`` seconds long (release tail included).
    Files are cached for the session. Programs are GM numbers from 0 (0 piano, 16 organ, 48 strings).
    """
    fluidsynth = _require_program("fluidsynth", "fluidsynth")
    soundfont = _require(GM_SOUNDFONT, "timgm6mb-soundfont")
    folder = tmp_path_factory.mktemp("gm_notes")

    def render(program: int, note: int = 60, velocity: int = 100, note_s: float = 1.0) -> Path:
        out = folder / f"gm{program}_n{note}_v{velocity}_{note_s:g}s.wav"
        if not out.exists():
            midi = out.with_suffix(".mid")
            midi.write_bytes(_midi_note_file(program, note, velocity, note_s, tail_s=1.0))
            command = [fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", "22050"]
            subprocess.run([*command, "-F", str(out), str(soundfont), str(midi)], check=True, timeout=60)
        return out

    return render


@pytest.fixture(scope="session")
def speech_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spoken English sentence (espeak-ng, mono 22,050 Hz wav, about 2 s)."""
    espeak = _require_program("espeak-ng", "espeak-ng")
    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    text = "The quick brown fox jumps over the lazy dog."
    subprocess.run([espeak, "-v", "en", "-s", "170", "-w", str(out), text], check=True, timeout=60)
    return out
