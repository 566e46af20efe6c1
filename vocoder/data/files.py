"""Finding audio files: filelists (`.txt`: `path` or `path|text` lines; `.lst`: literal paths), folder search,
cheap health checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import soundfile as sf

from ..audio.io import rate_problem

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _existing_dir(path: str | Path, what: str) -> Path:
    """`path` as a Path; a clear error naming it when it is missing or not a folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"{what} {path} is not a folder")
    return path


LIST_SUFFIXES = (".txt", ".lst")  # a `.lst` list is literal: one path a line, nothing else
QUOTE = '"'


@dataclass(frozen=True)
class ListEntry:
    """One path of a filelist: its line number (from 1), the line as written, the path it names."""

    line: int
    text: str
    path: Path


@dataclass
class Filelist:
    """A parsed filelist: its entries in order, and one note per line skipped or cut."""

    entries: list[ListEntry]
    notes: list[str] = field(default_factory=list)


def _quoted(line: str) -> tuple[str, str]:
    """A line starting with a double quote: (the path inside the quotes, `""` standing for one `"`;
    what follows the closing quote). ValueError when the quote is not closed."""
    path, i = [], 1
    while i < len(line):
        if line[i] == QUOTE:
            if line[i + 1:i + 2] == QUOTE:
                path.append(QUOTE)
                i += 2
                continue
            return "".join(path), line[i + 1:]
        path.append(line[i])
        i += 1
    raise ValueError("the closing double quote is missing")


def _entry_text(line: str, number: int, name: str, notes: list[str]) -> str | None:
    """The path a `.txt` line names (None: a blank or comment line), noting each line skipped or cut."""
    stripped = line.strip()
    if not stripped:
        return None
    if stripped.startswith(QUOTE):
        try:
            entry, rest = _quoted(stripped)
        except ValueError as err:
            raise ValueError(f"{name} line {number}: {err} in {stripped!r}") from None
        rest = rest.strip()
        if rest and not rest.startswith("|"):
            raise ValueError(f"{name} line {number}: text after the quoted path in {stripped!r} (only |text may "
                             "follow it)")
        if rest:
            notes.append(f"{name} line {number}: read {stripped!r} as the path {entry!r} (what follows | is "
                         "transcript text and ignored)")
        return entry
    if stripped.startswith("#"):
        notes.append(f"{name} line {number}: skipped {stripped!r}, a # comment (a file name starting with # "
                     f"goes in double quotes: \"{stripped}\")")
        return None
    entry, bar, _ = stripped.partition("|")
    entry = entry.strip()
    if bar:
        notes.append(f"{name} line {number}: read {stripped!r} as the path {entry!r} (what follows | is "
                     f"transcript text and ignored; a file name with | goes in double quotes: \"{stripped}\")")
    return entry or None


def parse_filelist(path: str | Path, root: str | Path | None = None, notes: bool = True) -> Filelist:
    """The paths listed in `path`, relative to `root` (default: the filelist's folder); absolute ones
    stay as they are.

    `.txt` (BigVGAN/LibriTTS filelists): one path a line, surrounding spaces dropped; blank lines are
    skipped; a line starting with `#` is a comment; `path|text` names `path` (the transcript is
    ignored); a path in double quotes is taken as written, `#` and `|` included (`""` inside stands
    for one `"`); `.wav` is appended to a path that does not exist without it. With `notes`, each
    comment and each cut line gets a note. `.lst`: every non-blank line is one path, exactly as
    written (nothing is a comment, cut, or appended). ValueError for a list that names no file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"filelist {path} does not exist" if not path.exists()
                                else f"filelist {path} is not a file")
    base = _existing_dir(root, "dataset root") if root is not None else path.parent
    literal = path.suffix.lower() == ".lst"
    found = Filelist([])
    said: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry = (line if line.strip() else None) if literal else _entry_text(line, number, path.name, said)
        if not entry:
            continue
        file = base / Path(entry).expanduser()  # an absolute entry stays as it is
        if not literal and file.suffix.lower() not in AUDIO_SUFFIXES and not file.exists():
            with_wav = file.with_name(file.name + ".wav")
            if with_wav.exists():
                file = with_wav
        found.entries.append(ListEntry(number, line, file))
    if notes:
        found.notes = said
    if not found.entries:
        raise ValueError(f"filelist {path} is empty: it lists no audio files")
    return found


def read_filelist(path: str | Path, root: str | Path | None = None) -> list[Path]:
    """The audio paths listed in `path` (see `parse_filelist` for the syntax), relative to `root`
    (default: the filelist's folder)."""
    return [entry.path for entry in parse_filelist(path, root, notes=False).entries]


def hold_out(files: list[Path], count: int, root: str | Path) -> tuple[list[Path], list[Path]]:
    """(training files, validation files): the first `count` of the sorted `files` found under `root`
    held out for validation (data.val_files); ValueError when that would leave none to train on."""
    if count >= len(files) and count > 0:
        raise ValueError(f"all {len(files)} audio files under {root} would be held out for validation "
                         f"(data.val_files={count}); lower data.val_files or add files")
    return files[count:], files[:count]


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


def scan_audio_files(paths: Iterable[str | Path], min_samples: int, sampling_rate: int | None = None,
                     needed_for: str = "one hop") -> tuple[list[AudioHeader], list[tuple[Path, str]]]:
    """`check_audio_files`, with the header of each good file; `needed_for` says in the reason of a
    file that is too short what `min_samples` are needed for."""
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
        problem = rate_problem(info.samplerate, info.frames, sampling_rate or info.samplerate)
        if problem is not None:
            broken.append((path, problem))
            continue
        samples = info.frames
        if sampling_rate is not None and info.samplerate != sampling_rate:
            samples = info.frames * sampling_rate // info.samplerate
        if samples < min_samples:
            at = f" at {sampling_rate} Hz" if sampling_rate is not None else ""
            broken.append((path, f"too short: {samples} samples{at}, shorter than {needed_for} "
                                 f"({min_samples} samples)"))
            continue
        good.append(AudioHeader(path, info.samplerate, info.channels, info.frames))
    return good, broken


def check_audio_files(paths: Iterable[str | Path], min_samples: int,
                      sampling_rate: int | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split `paths` into (good, broken with a reason) from their headers (`soundfile.info`, no decoding).

    Broken: missing, unreadable, 0 frames, a declared rate or length `load_audio` refuses (`rate_problem`),
    or shorter than `min_samples` (the hop size: such a file has no mel frame), counted at `sampling_rate`
    when given (the rate it will be resampled to).
    """
    good, broken = scan_audio_files(paths, min_samples, sampling_rate)
    return [h.path for h in good], broken
