"""The instrument every interface drives: state, knobs, freeze, presets, sounds, paths, cache, threads."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from flowsynth.audio import load_audio
from flowsynth.control import ControlSetup, Instrument, build_instrument


@pytest.fixture(scope="module")
def instrument(model_paths, dataset_path, tmp_path_factory, quick) -> Instrument:
    setup = ControlSetup(data=str(dataset_path), analysis=quick, surrogate_steps=200)
    return build_instrument(model_paths["flow_dis"], setup, cache_dir=tmp_path_factory.mktemp("cache"))


def test_the_measurements_are_cached(model_paths, tmp_path: Path, quick) -> None:
    setup = ControlSetup(analysis=quick, random_presets=24)
    first = build_instrument(model_paths["flow_reg"], setup, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1
    start = time.perf_counter()
    again = build_instrument(model_paths["flow_reg"], setup, cache_dir=tmp_path)
    assert time.perf_counter() - start < 5.0
    assert again.macros.macros == first.macros.macros and again.semantic.knobs == first.semantic.knobs
    assert [k.kind for k in first.semantic.knobs] == ["measured"] * 6
    assert first.bank is not None and first.bank.names[0] == "random #0"


def test_with_a_dataset_the_knobs_are_validated_and_their_surrogate_is_cached(
    model_paths, dataset_path, tmp_path: Path, quick
) -> None:
    setup = ControlSetup(data=str(dataset_path), analysis=quick, surrogate_steps=200)
    first = build_instrument(model_paths["flow_reg"], setup, cache_dir=tmp_path)
    assert len(first.semantic.knobs) == 6
    assert {k.kind for k in first.semantic.knobs} <= {"measured", "steered", "guided"}
    assert [s["name"] for s in first.semantic.selection] == [k.name for k in first.semantic.knobs]
    assert all(set(s["validation_rho"]) == {"measured", "steered", "guided"} for s in first.semantic.selection)
    assert len(list(tmp_path.glob("*.json"))) == len(list(tmp_path.glob("*.pt"))) == 1
    again = build_instrument(model_paths["flow_reg"], setup, cache_dir=tmp_path)
    assert again.semantic.knobs == first.semantic.knobs and again.semantic.selection == first.semantic.selection
    steered = next((i for i, k in enumerate(first.semantic.knobs) if k.kind != "measured"), 0)
    first.load_preset(3)
    again.load_preset(3)
    assert torch.equal(first.set_semantic({steered: 0.4}), again.set_semantic({steered: 0.4}))
    weights = next(tmp_path.glob("*.pt"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: measured again, not a crash
    assert build_instrument(model_paths["flow_reg"], setup, cache_dir=tmp_path).semantic.knobs == first.semantic.knobs
    weights.unlink()  # lost: measured again
    third = build_instrument(model_paths["flow_reg"], setup, cache_dir=tmp_path)
    assert third.semantic.knobs == first.semantic.knobs and len(list(tmp_path.glob("*.pt"))) == 1
    with pytest.raises(
        ValueError, match=r"steered, guided and validated semantic knobs need a dataset with stored descriptors"
    ):
        build_instrument(model_paths["flow_reg"], ControlSetup(analysis=quick, semantic="steered"), use_cache=False)


def test_state_is_json_and_describes_every_knob(instrument: Instrument) -> None:
    state = json.loads(json.dumps(instrument.state()))
    assert state["preset"] == "centre" and state["freeze"] is True
    assert len(state["macros"]) == 16 and sum(m["visible"] for m in state["macros"]) == 6
    assert [s["name"] for s in state["semantic"]] == ["dark / bright", "tonal / noisy"]
    assert len(state["params"]) == len(state["param_names"]) == 16 and len(state["map_xy"]) == 2


def test_a_knob_moves_the_parameters_and_only_its_coordinate(instrument: Instrument) -> None:
    instrument.load_preset(2)
    before, z_before = instrument.params, instrument.latent
    version = instrument.version
    after = instrument.set_macro(0, 0.9)
    assert not torch.allclose(before, after) and instrument.version == version + 1
    dim = instrument.macros.macros[0].dim
    changed = (instrument.latent != z_before).nonzero().flatten().tolist()
    assert changed == [dim]
    assert instrument.state()["macros"][0]["value"] == pytest.approx(0.9, abs=1e-5)


def test_without_freeze_the_hidden_dimensions_return_to_their_centre(instrument: Instrument) -> None:
    instrument.load_preset(4)
    instrument.set_freeze(False)
    try:
        instrument.set_macro(1, -0.3)
    finally:
        instrument.set_freeze(True)
    for macro in instrument.macros.macros[instrument.macros.visible :]:
        assert float(instrument.latent[macro.dim]) == pytest.approx(macro.center, abs=1e-5)


def test_semantic_knob_sets_its_value(instrument: Instrument) -> None:
    instrument.load_preset(1)
    instrument.set_semantic({1: -0.4})
    assert instrument.state()["semantic"][1]["value"] == pytest.approx(-0.4, abs=1e-4)


def test_presets_load_by_name_and_decode_to_their_parameters(instrument: Instrument) -> None:
    bank = instrument.bank
    assert bank is not None
    name = instrument.load_preset(bank.names[3])
    assert name == bank.names[3] == instrument.name
    assert torch.allclose(instrument.params, bank.params[3].clamp(1e-4, 1 - 1e-4), atol=1e-4)
    preset = instrument.preset_json()
    assert preset["name"] == name and len(preset["normalized"]) == 16 and "filter_cutoff" in preset["params"]
    with pytest.raises(ValueError, match="no preset named"):
        instrument.load_preset("nothing like this")


def test_a_recorded_sound_is_encoded(instrument: Instrument, render_gm_note) -> None:
    audio = load_audio(render_gm_note(0), sample_rate=44100)  # resampled to the model's rate inside
    params = instrument.encode_sound(audio, 44100, name="piano")
    assert instrument.name == "piano" and params.shape == (16,) and torch.isfinite(params).all()
    assert torch.allclose(instrument.latent, instrument.space.encode_audio(audio, 44100)[0], atol=1e-5)


def test_morphing_along_a_path_goes_from_one_preset_to_the_other(instrument: Instrument) -> None:
    bank = instrument.bank
    assert bank is not None
    path = instrument.set_path(0, 5, steps=9)
    assert path.params.shape == (9, 16)
    assert torch.allclose(instrument.morph(0.0), path.params[0], atol=1e-5)
    assert torch.allclose(instrument.morph(1.0), bank.params[5].clamp(1e-4, 1 - 1e-4), atol=1e-4)
    assert torch.allclose(instrument.morph(0.5), path.params[4], atol=1e-5)
    with pytest.raises(ValueError, match=r"path position \(in \[0, 1\]\)"):
        instrument.morph(1.5)
    assert instrument.state()["path"] == {"from": bank.names[0], "to": bank.names[5], "method": "straight"}


def test_a_geodesic_path_is_morphed_through_its_bent_steps(instrument: Instrument) -> None:
    bank = instrument.bank
    assert bank is not None
    straight = instrument.set_path(0, 5, steps=5)
    path = instrument.set_path(0, 5, steps=5, method="geodesic")
    assert path.latents is not None and straight.latents is not None
    assert not torch.allclose(path.params[1:-1], straight.params[1:-1], atol=1e-3)  # bent
    for k in range(5):  # every step of the path is on the morph, and the ends are the presets
        assert torch.allclose(instrument.morph(k / 4), path.params[k], atol=1e-5)
    between = (path.latents[1] + path.latents[2]) / 2  # between steps: the straight segment joining them
    assert torch.allclose(instrument.morph(3 / 8), instrument.space.to_params(between[None])[0], atol=1e-5)
    assert instrument.state()["path"]["method"] == "geodesic"
    with pytest.raises(ValueError, match="unknown path method 'curvy'; choose from straight, geodesic"):
        instrument.set_path(0, 5, method="curvy")


def test_render_plays_the_current_sound(instrument: Instrument) -> None:
    audio = instrument.render(note=64)
    assert audio.shape == (instrument.space.config.num_samples,) and float(audio.abs().max()) > 1e-3


def test_knobs_from_many_threads_leave_a_consistent_state(instrument: Instrument) -> None:
    versions: list[int] = []
    instrument.subscribe(versions.append)
    errors: list[Exception] = []

    def turn(index: int) -> None:
        try:
            for step in range(20):
                instrument.set_macro(index, (step % 5) / 5.0)
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(versions) == 80 and versions == sorted(versions)
    assert torch.allclose(instrument.params, instrument.space.to_params(instrument.latent[None])[0])
