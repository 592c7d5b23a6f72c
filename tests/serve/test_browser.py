"""The web page end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright)."""

from __future__ import annotations

import base64
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowsynth.control import Instrument
from flowsynth.serve.web import WebServer, create_app

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the driver; no browser download)")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]

#: Decodes the sound the page's player holds (fetched again from its src) and summarizes it.
PLAYED = """async () => {
  const player = document.getElementById("player");
  const data = await (await fetch(player.src)).arrayBuffer();
  const audio = await new OfflineAudioContext(1, 22050, 22050).decodeAudioData(data);
  const samples = audio.getChannelData(0);
  let energy = 0;
  for (const v of samples) energy += v * v;
  return {src: player.src, version: Number(player.dataset.version), length: samples.length,
          rms: Math.sqrt(energy / samples.length), head: Array.from(samples.slice(4000, 4016))};
}"""
PLAYING = "() => { const p = document.getElementById('player'); return !p.paused && p.currentTime > 0; }"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is missing: install the Debian package chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, instrument: Instrument) -> Iterator[Any]:
    server = WebServer(create_app(instrument), port=0).start()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.url)
        page.wait_for_function("() => document.getElementById('player').dataset.version !== undefined")
        yield page
        assert not errors, errors
    finally:
        page.close()
        server.stop()


def _params(page: Any) -> list[float]:
    return [
        float(v) for v in page.eval_on_selector_all("#params td:nth-child(2)", "cells => cells.map(c => c.textContent)")
    ]


def _wait_for_version_above(page: Any, version: int) -> None:
    page.wait_for_function(
        f"() => Number(document.getElementById('player').dataset.version) > {version}", timeout=20000
    )


def test_moving_a_knob_changes_the_parameters_and_the_sound_the_page_plays(page: Any, instrument: Instrument) -> None:
    page.wait_for_function(PLAYING, timeout=20000)
    before, params_before = page.evaluate(PLAYED), _params(page)
    assert before["length"] == 22050 and before["rms"] > 1e-4
    knob = page.locator("#macro-0").bounding_box()
    page.mouse.click(knob["x"] + 0.95 * knob["width"], knob["y"] + knob["height"] / 2)
    _wait_for_version_above(page, before["version"])
    page.wait_for_function(PLAYING, timeout=20000)
    after, params_after = page.evaluate(PLAYED), _params(page)
    assert params_after != params_before and len(params_after) == 16
    assert after["src"] != before["src"] and after["head"] != before["head"]
    value = float(page.locator("#macro-0").input_value())
    assert value > 0.8 and instrument.state()["macros"][0]["value"] == pytest.approx(value, abs=0.011)
    assert params_after == pytest.approx(instrument.params.tolist(), abs=1e-4)


def test_a_geodesic_path_set_on_the_page_is_morphed_by_its_slider(page: Any, instrument: Instrument) -> None:
    page.fill("#path-start", "2")
    page.fill("#path-end", "random #9")
    page.select_option("#path-method", "geodesic")
    page.click("#path-set")
    page.wait_for_function("() => ui.state.path && ui.state.path.method === 'geodesic'", timeout=30000)
    assert instrument.state()["path"] == {"from": "random #2", "to": "random #9", "method": "geodesic"}
    assert page.locator("#morph").is_enabled()
    page.locator("#morph").fill("1")  # sets the slider's value and fires its input event
    page.wait_for_function("() => ui.state.preset.endsWith('@ 1.000')", timeout=20000)
    bank = instrument.bank
    assert bank is not None
    assert instrument.params.tolist() == pytest.approx(bank.params[9].clamp(1e-4, 1 - 1e-4).tolist(), abs=1e-4)


def test_map_xy_pad_drop_and_a_screenshot(page: Any, instrument: Instrument, render_gm_note, tmp_path: Path) -> None:
    # Click the dot of preset 7 on the map.
    x, y = page.evaluate("() => { const s = mapScale(), p = ui.map.points[7]; return [s.x(p.x), s.y(p.y)]; }")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function("() => document.getElementById('preset').textContent === 'random #7'", timeout=20000)
    assert instrument.name == "random #7"
    # Drag on the XY pad towards the top right corner: the two chosen knobs go up.
    pad = page.locator("#xy").bounding_box()
    page.mouse.move(pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2)
    page.mouse.down()
    page.mouse.move(pad["x"] + 0.9 * pad["width"], pad["y"] + 0.1 * pad["height"], steps=5)
    page.mouse.up()
    page.wait_for_function("() => ui.state.macros[0].value > 0.7 && ui.state.macros[1].value > 0.7", timeout=20000)
    # Drop a recorded sound on the drop zone.
    sound = render_gm_note(48)
    encoded = base64.b64encode(sound.read_bytes()).decode()
    page.evaluate(
        """([name, data]) => {
          const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], name, {type: "audio/wav"}));
          document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }""",
        [sound.name, encoded],
    )
    page.wait_for_function(f"() => document.getElementById('preset').textContent === '{sound.stem}'", timeout=30000)
    assert instrument.name == sound.stem
    # The download link gives the preset file.
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "preset.json"
    download.value.save_as(saved)
    assert saved.read_text().startswith("{") and sound.stem in saved.read_text()
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    header = shot.read_bytes()[:24]
    width, height = struct.unpack(">II", header[16:24])
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and width == 1280 and height >= 860 and shot.stat().st_size > 30_000
