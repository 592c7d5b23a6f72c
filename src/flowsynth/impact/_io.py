"""Small audio file helpers of the impact instrument: mono loading with resampling, atomic WAV writing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from flowsynth.errors import AudioError

__all__ = ["atomic_path", "load_mono", "publish", "save_wav"]


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """Reads an audio file as float32 mono at ``sample_rate`` (channels averaged, resampled with soxr).

    Raises:
        FileNotFoundError: when the file does not exist.
        AudioError: when the file cannot be decoded or holds no samples.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audio file at {path}")
    try:
        audio, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioError(f"cannot decode {path} ({error}); use WAV, FLAC, AIFF or OGG") from error
    if audio.shape[0] == 0:
        raise AudioError(f"{path} holds no samples")
    mono = audio.mean(axis=1)
    if file_rate != sample_rate:
        import librosa

        mono = librosa.resample(mono, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    if not np.isfinite(mono).all():
        raise AudioError(f"{path} holds NaN or infinite samples")
    return mono.astype(np.float32)


def atomic_path(path: str | Path) -> tuple[Path, Path]:
    """A temporary path next to ``path`` (same folder, so a rename is atomic) and ``path`` itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    return Path(name), path


def publish(temporary: Path, final: Path) -> Path:
    """Renames a finished temporary file onto its final path, with the usual permissions (umask applied)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, final)
    return final


def save_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Writes mono float audio as a 16-bit WAV file, atomically (temporary file, then rename)."""
    import soundfile

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AudioError(f"save_wav writes mono audio (1-D), got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise AudioError("refusing to write audio with NaN or infinite samples")
    temporary, final = atomic_path(path)
    try:
        soundfile.write(str(temporary), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
        publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final
