"""The engine's promises: sound in the block of the trigger, cross-fades, safe slots, no allocation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from flowsynth.impact.engine import EngineConfig, ImpactEngine

BLOCK = 64


class ConstantRenders:
    """Each render is a constant signal whose value counts the renders (gate 2 is negative)."""

    def __init__(self, samples: int) -> None:
        self.samples, self.count = samples, 0

    def __call__(self, gate: int, cvs: tuple[float, float, float]) -> np.ndarray:
        self.count += 1
        sign = 1.0 if gate == 1 else -1.0
        return np.full(self.samples, sign * 0.01 * self.count, np.float32)


def make_engine(samples: int = 1024, **kwargs: object) -> tuple[ImpactEngine, ConstantRenders]:
    render = ConstantRenders(samples)
    config = EngineConfig(block_size=BLOCK, impact_samples=samples, gain=1.0, **kwargs)  # type: ignore[arg-type]
    return ImpactEngine(render, config), render


def run_blocks(engine: ImpactEngine, count: int) -> np.ndarray:
    out = np.zeros((count * BLOCK, 1), np.float32)
    for b in range(count):
        engine.process(out[b * BLOCK : (b + 1) * BLOCK])
    return out[:, 0]


def test_a_trigger_sounds_at_its_offset_in_the_next_block() -> None:
    engine, _ = make_engine()
    engine.render_pending()
    engine.trigger(1, offset=10)
    out = run_blocks(engine, 1)
    assert (out[:10] == 0).all() and (out[10:] != 0).all()


def test_trigger_before_any_render_is_dropped_not_blocking() -> None:
    engine, _ = make_engine()
    engine.trigger(1)
    assert (run_blocks(engine, 2) == 0).all() and engine.triggers_dropped == 1


def test_voices_add_up_and_end_after_the_impact() -> None:
    engine, _ = make_engine(samples=4 * BLOCK)
    engine.render_pending()
    engine.trigger(1)
    engine.trigger(2)
    out = run_blocks(engine, 6)
    assert out[:BLOCK] == pytest.approx(np.full(BLOCK, 0.01 - 0.02))
    assert (out[4 * BLOCK :] == 0).all()


def test_the_oldest_voice_is_stolen() -> None:
    engine, _ = make_engine(voices=2)
    engine.render_pending()
    for offset in (0, 1, 2):
        engine.trigger(1, offset)
    out = run_blocks(engine, 1)
    assert out[5] == pytest.approx(0.02)  # two voices sound at once, never three


def test_new_renders_cross_fade_without_jumps_and_never_overwrite_a_playing_slot() -> None:
    samples = 40 * BLOCK
    engine, _ = make_engine(samples=samples, crossfade_s=BLOCK / 22050)
    engine.render_pending()
    engine.trigger(1)
    out = np.zeros(samples, np.float32)
    for b in range(40):
        engine.set_cv("richness", 0.5 + 0.02 * (b % 2))  # moves every block: a render per block
        engine.render_pending()
        engine.process(out[b * BLOCK : (b + 1) * BLOCK, None])
    assert engine.renders > 15
    steps = np.abs(np.diff(out[: 39 * BLOCK]))
    assert steps.max() < 0.03 * 2 / BLOCK * 3  # smooth ramps only: a slot overwritten under a voice would jump
    assert out[38 * BLOCK] > 0.01 * 20  # it did follow the newer renders


def test_render_pending_skips_small_cv_moves() -> None:
    engine, render = make_engine()
    assert engine.render_pending()
    engine.set_cv("degree", 0.5 + 0.001)
    assert not engine.render_pending() and render.count == 2


def test_bad_controls_are_refused() -> None:
    engine, _ = make_engine()
    with pytest.raises(ValueError, match="gate must be 1 or 2"):
        engine.trigger(3)
    with pytest.raises(ValueError, match="unknown CV 'pitch'"):
        engine.set_cv("pitch", 0.5)
    with pytest.raises(ValueError, match="slots must be at least 3"):
        EngineConfig(slots=2)


def test_process_allocates_no_arrays() -> None:
    block = 2048  # float32 block: 8 KiB, far above the few small Python objects a call creates
    engine = ImpactEngine(ConstantRenders(4 * block), EngineConfig(block_size=block, impact_samples=4 * block))
    engine.render_pending()
    out = np.zeros((block, 2), np.float32)
    engine.process(out)
    tracemalloc.start()
    try:
        for b in range(200):
            if b % 3 == 0:
                engine.trigger(1 + b % 2, b)
            engine.process(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < block * 4 // 2
    assert engine.triggers_played > 60 and np.abs(out).max() > 0
