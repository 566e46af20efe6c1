"""Finding audio files: filelists (`path` or `path|text` lines), folder search, cheap health checks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import soundfile as sf

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _existing_dir(path: str | Path, what: str) -> Path:
    """`path` as a Path; a clear error naming it when it is missing or not a folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"{what} {path} is not a folder")
    return path


def read_filelist(path: str | Path, root: str | Path | None = None) -> list[Path]:
    """Audio paths listed in `path`, one a line, relative to `root` (default: the filelist's folder).

    Lines may be `path|text` (BigVGAN/LibriTTS style; the text is ignored); blank lines and `#`
    comments are skipped; `.wav` is appended to a path that does not exist without it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"filelist {path} does not exist" if not path.exists()
                                else f"filelist {path} is not a file")
    base = _existing_dir(root, "dataset root") if root is not None else path.parent
    files = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("|", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        file = base / Path(entry).expanduser()  # an absolute entry stays as it is
        if file.suffix.lower() not in AUDIO_SUFFIXES and not file.exists():
            with_wav = file.with_name(file.name + ".wav")
            if with_wav.exists():
                file = with_wav
        files.append(file)
    if not files:
        raise ValueError(f"filelist {path} is empty: it lists no audio files")
    return files


def find_audio(folder: str | Path) -> list[Path]:
    """Every audio file under `folder` (recursive; .wav/.flac/.ogg/.mp3 by suffix), sorted."""
    folder = _existing_dir(folder, "dataset root")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {folder}")
    return files


class AudioHeader(NamedTuple):
    """What `soundfile.info` says about a usable file."""

    path: Path
    sampling_rate: int
    channels: int
    frames: int


def scan_audio_files(paths: Iterable[str | Path], min_samples: int, sampling_rate: int | None = None
                     ) -> tuple[list[AudioHeader], list[tuple[Path, str]]]:
    """`check_audio_files`, with the header of each good file."""
    good: list[AudioHeader] = []
    broken: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if not path.is_file():
            broken.append((path, "file not found"))
            continue
        try:
            info = sf.info(str(path))
        except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
            broken.append((path, f"unreadable: {str(err).strip() or type(err).__name__}"))
            continue
        if info.frames <= 0:
            broken.append((path, "empty: 0 audio frames"))
            continue
        samples = info.frames
        if sampling_rate is not None and info.samplerate != sampling_rate:
            samples = info.frames * sampling_rate // info.samplerate
        if samples < min_samples:
            at = f" at {sampling_rate} Hz" if sampling_rate is not None else ""
            broken.append((path, f"too short: {samples} samples{at}, shorter than one hop "
                                 f"({min_samples} samples)"))
            continue
        good.append(AudioHeader(path, info.samplerate, info.channels, info.frames))
    return good, broken


def check_audio_files(paths: Iterable[str | Path], min_samples: int,
                      sampling_rate: int | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split `paths` into (good, broken with a reason) from their headers (`soundfile.info`, no decoding).

    Broken: missing, unreadable, 0 frames, or shorter than `min_samples` (the hop size: such a
    file has no mel frame), counted at `sampling_rate` when given (the rate it will be resampled to).
    """
    good, broken = scan_audio_files(paths, min_samples, sampling_rate)
    return [h.path for h in good], broken
