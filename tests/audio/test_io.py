"""Tests of flowsynth.audio: loading real sound files, refusing broken ones, atomic saving."""

from __future__ import annotations

import os
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
import torch

from flowsynth.audio import AudioError, check_audio, load_audio, save_audio
from flowsynth.audio.checks import SILENCE_PEAK

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")


def test_load_flac_stereo_matches_librosa(kick_path: Path) -> None:
    audio = load_audio(kick_path)
    expected, rate = librosa.load(kick_path, sr=22050, mono=True)
    assert rate == 22050
    assert audio.dtype == torch.float32 and audio.dim() == 1
    assert audio.shape[0] == expected.shape[0] == round(soundfile.info(kick_path).frames / 2)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-4)


def test_mono_is_the_mean_of_the_channels(snare_path: Path) -> None:
    both = load_audio(snare_path, mono=False)
    assert both.shape[0] == 2
    torch.testing.assert_close(load_audio(snare_path), both.mean(dim=0), atol=1e-6, rtol=0)


def test_native_rate_is_kept_without_resampling(hihat_path: Path) -> None:
    data, rate = soundfile.read(hihat_path, dtype="float32")
    audio = load_audio(hihat_path, sample_rate=rate, mono=False)
    np.testing.assert_array_equal(audio.numpy(), data.T)


@pytest.mark.parametrize("relative", ["BJA_Pacific/BD_01.aiff", "ForzeeStereo/HiHatClosed-0.wav"])
def test_loads_aiff_and_24_bit_wav(relative: str) -> None:
    path = DRUMKITS / relative
    if not path.exists():
        pytest.skip(f"{path} is missing: install the Debian package hydrogen-drumkits")
    info = soundfile.info(path)
    audio = load_audio(path, sample_rate=16000)
    assert abs(audio.shape[0] - info.frames * 16000 / info.samplerate) <= 1
    assert audio.abs().max() > 0.01


@pytest.mark.parametrize("extension", ["ogg", "mp3", "flac"])
def test_compressed_round_trip(extension: str, render_gm_note, tmp_path: Path) -> None:
    if extension.upper() not in soundfile.available_formats():
        pytest.skip(f"this libsndfile cannot write {extension}")
    note = load_audio(render_gm_note(0, note_s=0.5))
    path = save_audio(tmp_path / f"note.{extension}", note, 22050)
    again = load_audio(path)
    assert abs(again.shape[0] - note.shape[0]) <= 2048  # mp3 adds encoder delay and padding
    spectrum = lambda x: np.abs(librosa.stft(x.numpy()[:20000], n_fft=2048))  # noqa: E731
    assert np.linalg.norm(spectrum(again) - spectrum(note)) / np.linalg.norm(spectrum(note)) < 0.5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"audio file not found: .*nothing\.wav"):
        load_audio(tmp_path / "nothing.wav")


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_text_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not a sound\n" * 50)
    with pytest.raises(AudioError, match=r"cannot read .*notes\.wav as audio"):
        load_audio(path)


def test_truncated_header_is_corrupt(kick_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.flac"
    path.write_bytes(kick_path.read_bytes()[:30])
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1), dtype=np.float32), 22050)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(path)


def test_nan_samples(kick_path: Path, tmp_path: Path) -> None:
    data, rate = soundfile.read(kick_path, dtype="float32")
    data[100, 0] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, data, rate, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path)


def test_silent_file_refused_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    dither = np.random.default_rng(0).integers(-2, 3, size=22050) / 32768.0  # +-2 LSB of 16-bit
    soundfile.write(path, dither, 22050, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"silent \(peak -84.3 dBFS.*allow_silent=True"):
        load_audio(path)
    audio = load_audio(path, allow_silent=True)
    assert audio.shape == (22050,) and audio.abs().max() < SILENCE_PEAK


@pytest.mark.parametrize("rate", [200, 2_000_000])
def test_absurd_file_sample_rate(rate: int, kick_path: Path, tmp_path: Path) -> None:
    data, _ = soundfile.read(kick_path, dtype="float32")
    path = tmp_path / "odd.wav"
    soundfile.write(path, data, rate)
    with pytest.raises(AudioError, match=f"sample rate of .*odd.wav of {rate} Hz is outside"):
        load_audio(path)


@pytest.mark.parametrize("rate", [0, -22050, 22050.5, 10**9])
def test_absurd_requested_sample_rate(rate: float, kick_path: Path) -> None:
    with pytest.raises(AudioError, match="requested sample rate"):
        load_audio(kick_path, sample_rate=rate)  # type: ignore[arg-type]


def test_save_pcm16_round_trip_is_atomic(snare_path: Path, tmp_path: Path) -> None:
    audio = load_audio(snare_path, mono=False)
    target = tmp_path / "out" / "snare.wav"
    target.parent.mkdir()
    target.write_bytes(b"old content")
    assert save_audio(target, audio, 22050) == target
    assert soundfile.info(target).subtype == "PCM_16"
    again = load_audio(target, mono=False)
    assert (again - audio).abs().max() <= 1.0 / 32768
    assert os.listdir(target.parent) == ["snare.wav"]


def test_save_float_keeps_values_and_pcm_clips(hihat_path: Path, tmp_path: Path) -> None:
    loud = load_audio(hihat_path) * 40.0
    assert loud.abs().max() > 1.5
    exact = load_audio(save_audio(tmp_path / "f.wav", loud, 22050, subtype="FLOAT"))
    torch.testing.assert_close(exact, loud, rtol=0, atol=0)
    clipped = load_audio(save_audio(tmp_path / "c.wav", loud, 22050))
    assert clipped.abs().max() <= 1.0
    torch.testing.assert_close(clipped, loud.clamp(-1, 1), rtol=0, atol=1.0 / 32768)


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    audio = torch.tensor([0.1, float("nan"), 0.2])
    with pytest.raises(AudioError, match="NaN"):
        save_audio(tmp_path / "bad.wav", audio, 22050)
    with pytest.raises(AudioError, match="cannot be written as OGG; accepted: VORBIS"):
        save_audio(tmp_path / "bad.ogg", torch.ones(100) * 0.1, 22050, subtype="PCM_24")
    with pytest.raises(AudioError, match=r"cannot tell the audio format of .*bad\.xyz"):
        save_audio(tmp_path / "bad.xyz", torch.ones(100) * 0.1, 22050)
    assert list(tmp_path.iterdir()) == []


def test_check_audio_accepts_real_audio_and_rows(kick_path: Path, hihat_path: Path) -> None:
    kick, hihat = load_audio(kick_path), load_audio(hihat_path)
    batch = torch.stack([kick[:10000], hihat[:10000]])
    assert check_audio(batch) is batch


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(10), "must be a torch.Tensor"),
        (torch.ones(10, dtype=torch.int16), "floating-point"),
        (torch.ones(2, 2, 10), r"shape \[N\] or \[B, N\]"),
        (torch.ones(3, 0), "empty"),
        (torch.tensor([[0.5, 0.1], [0.5, float("inf")]]), "audio row 1 has 1 NaN or infinite"),
        (torch.tensor([[0.5, 0.1], [0.0, 1e-5]]), "audio row 1 is silent"),
    ],
)
def test_check_audio_refuses(audio: object, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        check_audio(audio)  # type: ignore[arg-type]


def test_audioread_fallback_decodes_like_soundfile(render_gm_note) -> None:
    pytest.importorskip("audioread")
    from flowsynth.audio.io import _read_with_audioread

    path = render_gm_note(16, note_s=0.5)  # 16-bit stereo wav: audioread's raw backend reads it
    decoded = _read_with_audioread(path)
    assert decoded is not None
    samples, rate = decoded
    data, expected_rate = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == expected_rate and samples.shape == data.T.shape
    np.testing.assert_array_equal(samples, data.T)


def test_save_refuses_samples_first_layout(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"shape \[1000, 2\]; expected \[channels, N\]"):
        save_audio(tmp_path / "x.wav", torch.full((1000, 2), 0.1), 22050)


def test_numpy_sample_rates_are_accepted(kick_path: Path) -> None:
    assert load_audio(kick_path, sample_rate=np.int64(16000)).shape[0] == round(
        soundfile.info(kick_path).frames / 44100 * 16000
    )
