"""``flowsynth impact describe`` on a real recording."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from flowsynth.impact.descriptors import DESCRIPTOR_NAMES


def test_describe_prints_a_table_and_writes_a_plot(
    kits: Path, tmp_path: Path, capsys: pytest.CaptureFixture, impact_cli: Callable
) -> None:
    png = tmp_path / "curves.png"
    assert impact_cli(["describe", str(kits / "ColomboAcousticDrumkit" / "tom-low-1.flac"), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in DESCRIPTOR_NAMES)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_describe_json_has_every_frame(kits: Path, capsys: pytest.CaptureFixture, impact_cli: Callable) -> None:
    impact_cli(["describe", str(kits / "VariBreaks" / "VP Kick 1.flac"), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert set(data["curves"]) == set(DESCRIPTOR_NAMES)
    assert all(len(v) == len(data["time_s"]) for v in data["curves"].values())


def test_describe_missing_file_is_a_clear_error(tmp_path: Path, impact_cli: Callable) -> None:
    with pytest.raises(FileNotFoundError, match="no audio file at"):
        impact_cli(["describe", str(tmp_path / "nope.wav")])
