"""Reading and writing sound files: any format libsndfile knows, mono mixdown, resampling, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch
from torch import Tensor

from flowsynth.audio.checks import check_audio, check_sample_rate
from flowsynth.errors import AudioError

__all__ = ["PCM_SUBTYPE", "load_audio", "resample", "save_audio"]

#: Subtype written by :func:`save_audio` by default where the format takes it (WAV, FLAC, AIFF).
PCM_SUBTYPE = "PCM_16"
#: Most channels :func:`save_audio` writes; more means a ``[N, channels]`` tensor was given by mistake.
MAX_CHANNELS = 64

_FORMATS_HINT = "WAV, FLAC, OGG/Vorbis, AIFF, MP3 and the other formats of libsndfile"


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int = 22050,
    mono: bool = True,
    *,
    allow_silent: bool = False,
) -> Tensor:
    """Reads a sound file as float32 samples at ``sample_rate``.

    Every format libsndfile reads is accepted (WAV, FLAC, OGG, AIFF, MP3, ...); when libsndfile
    cannot read a file and ``audioread`` is installed, the file is tried with it (through librosa).
    Channels are averaged for ``mono``; the audio is resampled with soxr (high quality) when its
    rate differs from ``sample_rate``.

    Args:
        path: the sound file.
        sample_rate: rate (Hz) of the returned samples.
        mono: mix all channels down to one and return ``[N]``; otherwise return ``[channels, N]``.
        allow_silent: accept a file whose peak is under -80 dBFS (see :func:`check_audio`).

    Returns:
        float32 tensor ``[N]`` (mono) or ``[channels, N]``.

    Raises:
        AudioError: missing file, unreadable or corrupt file, no samples, NaN/inf samples, a silent
            sound, or a sample rate (of the file or requested) outside [1000, 768000] Hz.
    """
    target_rate = check_sample_rate(sample_rate, "requested sample rate")
    file = Path(path)
    if not file.exists():
        raise AudioError(f"audio file not found: {file}")
    if not file.is_file():
        raise AudioError(f"not a file: {file}; give the path of a sound file ({_FORMATS_HINT})")
    samples, file_rate = _read(file)
    file_rate = check_sample_rate(file_rate, f"sample rate of {file}")
    if samples.shape[1] == 0:
        raise AudioError(f"audio file has no samples: {file}")
    if mono:
        samples = samples.mean(axis=0, keepdims=True)
    check_audio(torch.from_numpy(samples).reshape(-1), allow_silent=allow_silent, name=str(file))
    samples = resample(samples, file_rate, target_rate)
    audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return audio[0] if mono else audio


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resamples ``[..., N]`` float samples from ``from_rate`` to ``to_rate`` Hz with soxr (high quality).

    >>> resample(np.zeros((1, 44100), dtype=np.float32), 44100, 22050).shape
    (1, 22050)
    """
    if from_rate == to_rate:
        return samples
    import librosa  # lazy: slow to import

    return librosa.resample(samples, orig_sr=from_rate, target_sr=to_rate, res_type="soxr_hq", axis=-1)


def _read(file: Path) -> tuple[np.ndarray, float]:
    """Returns float32 samples ``[channels, N]`` and the file's sample rate."""
    try:
        data, rate = soundfile.read(file, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), float(rate)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        fallback = _read_with_audioread(file)
        if fallback is None:
            raise AudioError(f"cannot read {file} as audio ({error}); readable formats: {_FORMATS_HINT}") from error
        return fallback


def _read_with_audioread(file: Path) -> tuple[np.ndarray, float] | None:
    """Reads ``file`` with audioread (its ffmpeg/GStreamer backends) when installed; None when missing or failing."""
    try:
        import audioread
    except ImportError:
        return None
    try:
        with audioread.audio_open(str(file)) as decoder:
            rate, channels = float(decoder.samplerate), int(decoder.channels)
            pcm = b"".join(decoder)
    except Exception:  # backends raise many unrelated types; the libsndfile error is the one reported
        return None
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return np.ascontiguousarray(samples.reshape(-1, max(channels, 1)).T), rate


def save_audio(
    path: str | os.PathLike[str],
    audio: Tensor,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Writes ``audio`` to ``path`` atomically: readers see the old file or the whole new one, never a part.

    The format follows the file extension (``.wav``, ``.flac``, ``.ogg``, ``.aiff``, ``.mp3``, ...).
    The samples are written to a temporary file in the same folder, which then replaces ``path``
    (``os.replace``). Missing parent folders are created.

    Args:
        path: destination file.
        audio: float samples ``[N]`` or ``[channels, N]``, nominally in [-1, 1]; silence is allowed.
        sample_rate: rate in Hz.
        subtype: libsndfile subtype. None: ``PCM_16`` where the format takes it (WAV, FLAC, AIFF),
            else the format's default (Vorbis for OGG, MPEG layer III for MP3). Integer subtypes clip
            samples to [-1, 1]; ``"FLOAT"`` (WAV, AIFF) keeps float32 values exactly, out-of-range too.

    Returns:
        The written path.

    Raises:
        AudioError: NaN/inf or empty audio, bad sample rate, unknown extension or subtype.
    """
    file = Path(path)
    rate = check_sample_rate(sample_rate)
    check_audio(audio, allow_silent=True, name=f"audio for {file}")
    if audio.dim() == 2 and audio.shape[0] > MAX_CHANNELS:
        raise AudioError(f"audio for {file} has shape {list(audio.shape)}; expected [channels, N], channels first")
    file_format, subtype = _format_and_subtype(file, subtype)
    data = audio.detach().to(torch.float32).cpu().numpy()
    data = data[:, None] if data.ndim == 1 else data.T
    if subtype.startswith(("PCM", "ALAW", "ULAW", "DPCM", "DWVW")) or file_format in ("OGG", "MP3"):
        data = np.clip(data, -1.0, 1.0)
    file.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{file.stem}.", suffix=f"{file.suffix}.partial", dir=file.parent)
    os.close(handle)
    try:
        soundfile.write(temp_name, data, rate, subtype=subtype, format=file_format)
        os.replace(temp_name, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return file


def _format_and_subtype(file: Path, subtype: str | None) -> tuple[str, str]:
    """Returns the libsndfile format of ``file``'s extension and the subtype to write."""
    extension = file.suffix.lower().lstrip(".")
    formats = soundfile.available_formats()
    file_format = {"aif": "AIFF", "oga": "OGG"}.get(extension, extension.upper())
    if file_format not in formats:
        known = ", ".join(sorted(f".{name.lower()}" for name in formats))
        raise AudioError(f"cannot tell the audio format of {file} from its extension; use one of {known}")
    if subtype is None:
        subtype = PCM_SUBTYPE if soundfile.check_format(file_format, PCM_SUBTYPE) else None
        subtype = subtype or soundfile.default_subtype(file_format)
    if not soundfile.check_format(file_format, subtype):
        accepted = ", ".join(soundfile.available_subtypes(file_format))
        raise AudioError(f"subtype {subtype!r} cannot be written as {file_format}; accepted: {accepted}")
    return file_format, subtype
