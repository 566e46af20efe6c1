"""Which files a `vocoder.infer` run reads and where each output goes: the input search, the output
layout, and the refusals that keep every input (and everything outside `output`) as it was.

Layout: an input's path relative to the input folder (a folder input: that folder; a `.txt` list:
the list's folder; a single file: its folder) is mirrored under `output`, as `.wav`. A list entry
outside the list's folder (`../D/song.flac`, `/data/x.wav`) goes to `output/_outside/` followed by its
normalised absolute path without the leading `/` (`output/_outside/data/x.wav`), so distinct inputs
get distinct outputs and no output leaves `output`.

What `overwrite=true` may replace: only earlier outputs of this tool, told by the software tag
(`OUTPUT_TAG`) that every output carries in its metadata; never an input, nor any other file (a
recording beside a single-file input or a list's entries, a file the user put in the output
folder). A run that would replace such a file is refused before anything is done.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from .audio.io import audio_software
from .data.files import AUDIO_SUFFIXES, LIST_SUFFIXES, parse_filelist
from .data.mel_files import MEL_SUFFIXES

INPUT_SUFFIXES = AUDIO_SUFFIXES + MEL_SUFFIXES
OUTSIDE = "_outside"  # the output subfolder of list entries that lie outside the list's folder
OUTPUT_TAG = "vocoder.infer"  # the software tag of every output: what marks a file overwrite may replace


def is_earlier_output(path: str | os.PathLike) -> bool:
    """Whether the file at `path` is an output of this tool (its software tag says so); what
    `overwrite=true` may replace."""
    return audio_software(path).startswith(OUTPUT_TAG)


class InferError(RuntimeError):
    """A problem with the run as a whole (no inputs, outputs that would replace inputs): nothing is done."""


@dataclass(frozen=True)
class Job:
    """One input file and the wav it becomes; `error` set when it cannot be done (reported, skipped)."""

    source: Path
    target: Path
    error: str | None = None


@dataclass
class Inputs:
    """What `find_inputs` found: the files, the folder their outputs mirror, and what it left out."""

    files: list[Path]
    root: Path
    broken: list[tuple[Path, str]] = field(default_factory=list)  # dangling links, link loops
    excluded: int = 0  # input-like files under an excluded folder (the output folder) not taken
    searched: bool = False  # `root` is a folder input, searched (not a list's or a file's folder)
    origins: list[str] = field(default_factory=list)  # a list's entries: where each of `files` was listed
    notes: list[str] = field(default_factory=list)  # a list's lines skipped or cut, one note each


def _normal(path: Path) -> Path:
    """Absolute, with `.` and `..` resolved textually (links are not followed)."""
    return Path(os.path.normpath(path.absolute()))


def _real(path: Path) -> Path:
    """The path with every link followed (as far as they go: a loop or a dangling link does not raise)."""
    return Path(os.path.realpath(path))


def link_problem(path: Path) -> str | None:
    """Why the symbolic link `path` cannot be read (dangling, a loop), or None."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"is a dangling symbolic link (to {os.readlink(path)}, which does not exist)"
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic link loop (the links lead back to themselves)"
        return f"cannot be examined: {e.strerror or e}"
    return None


def _inside(path: Path, folders: set[Path]) -> bool:
    return any(p in folders for p in (path, *path.parents))


def _search(folder: Path, real: Path, skip: set[Path], found: Inputs, chain: frozenset[Path]) -> None:
    """Add the input files under `folder` (whose real path is `real`) to `found`. Links to folders are
    followed; one leading back to a folder on the way down (`chain`) is reported as a loop."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        found.broken.append((folder, f"cannot list the folder: {e.strerror or e}"))
        return
    for entry in entries:
        path, link = folder / entry.name, entry.is_symlink()
        target = _real(path) if link else real / entry.name
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()  # both follow links
        except OSError:  # a link loop
            is_dir = is_file = False
        if is_dir:
            if target in chain:
                found.broken.append((path, f"is a symbolic link loop: it leads back to {target}, a folder it is in"))
            elif _inside(target, skip):  # the output folder, or a link into it
                found.excluded += sum(1 for _, _, names in os.walk(path) for n in names
                                      if Path(n).suffix.lower() in INPUT_SUFFIXES)
            else:
                _search(path, target, skip, found, chain | {target})
        elif path.suffix.lower() not in INPUT_SUFFIXES and not (link and Path(os.readlink(path)).suffix.lower()
                                                                in INPUT_SUFFIXES):
            continue
        elif is_file:
            if _inside(target, skip) if link else target in skip:
                found.excluded += 1
            else:
                found.files.append(path)
        elif link:  # neither a file nor a folder: a dangling link or a loop
            found.broken.append((path, link_problem(path) or "cannot be read"))


def find_inputs(input: str | os.PathLike, exclude: tuple[Path, ...] = ()) -> Inputs:
    """The input files of `input`: a folder (searched recursively for audio and mel files, links
    followed, leaving out `exclude`: the output folder, the checkpoint), a `.txt` or `.lst` list of
    paths (`vocoder.data.files.parse_filelist`), or one file. Raises InferError when there is nothing to do."""
    path = Path(input).expanduser()
    if not path.exists():
        problem = link_problem(path)
        raise InferError(f"input {path} {problem}" if problem else f"input {path} does not exist")
    if path.is_dir():
        here = _real(path)  # an excluded folder holding the input folder would exclude everything
        skip = {_real(p) for p in exclude if not _inside(here, {_real(p)})}
        found = Inputs([], path, searched=True)
        _search(path, here, skip, found, frozenset({here}))
        found.files.sort()
        if not found.files and not found.broken:
            left_out = f" ({found.excluded} under the output folder are not inputs)" if found.excluded else ""
            raise InferError(f"no audio ({', '.join(AUDIO_SUFFIXES)}) or mel ({', '.join(MEL_SUFFIXES)}) "
                             f"files found under {path}{left_out}")
        return found
    if path.suffix.lower() in LIST_SUFFIXES:
        try:
            listed = parse_filelist(path)
        except (ValueError, OSError) as e:
            raise InferError(str(e)) from e
        return Inputs([e.path for e in listed.entries], path.parent, notes=listed.notes,
                      origins=[f"line {e.line} of {path.name}" for e in listed.entries])
    return Inputs([path], path.parent)


def output_path(file: Path, root: Path, output: Path) -> Path:
    """Where `file`'s wav goes: its path under `root` mirrored under `output`, or, for a file outside
    `root`, `output/_outside/<its absolute path>` (see the module docstring). Never outside `output`."""
    absolute = _normal(file)
    try:
        relative = absolute.relative_to(_normal(root))
    except ValueError:
        drive = absolute.drive.replace(":", "").strip("\\/")  # C: on Windows, nothing on POSIX
        relative = Path(OUTSIDE, *([drive] if drive else []), *absolute.parts[1:])
    return output / relative.with_suffix(".wav")


def _shown(items: list[str]) -> str:
    return "; ".join(items[:5]) + (f"; ... ({len(items)} in all)" if len(items) > 5 else "")


def _entries(inputs: Inputs) -> list[tuple[Path, str | None, str | None]]:
    """(file, where it was listed, its problem) for each input: a list's in its order, a folder's sorted."""
    if inputs.origins:
        return [(file, origin, None) for file, origin in zip(inputs.files, inputs.origins)]
    broken = dict(inputs.broken)
    return [(file, None, broken.get(file)) for file in sorted([*inputs.files, *broken])]


def plan_jobs(inputs: Inputs, output: str | os.PathLike, overwrite: bool = False) -> list[Job]:
    """A Job per input, its output laid out by `output_path`.

    Raises InferError (nothing is done) when an output would be one of the inputs, or, with
    `overwrite`, would replace an existing file that is not an earlier output of this tool
    (`is_earlier_output`): a recording beside the inputs, a file the user keeps in the output folder.
    Per-file problems become Jobs with an error: a dangling link or link loop, a list entry that is a
    folder, a file listed twice, a second input mapping to an output already taken (a.wav and
    a.flac), an output path leading out of `output` through a link to a folder.
    """
    out = Path(output).expanduser()
    if out.exists() and not out.is_dir():
        raise InferError(f"output {out} is a file; output must be a folder")
    out_real = _real(out)
    sources = {_real(p): p for p in inputs.files}
    jobs: list[Job] = []
    taken: dict[Path, tuple[Path, str | None]] = {}
    replaced_inputs, replaced_files = [], []
    for file, origin, problem in _entries(inputs):
        try:
            target = output_path(file, inputs.root, out)
        except ValueError:  # no name to mirror: a list entry `.` or the list's own folder
            target = out
        if problem is None and origin and file.is_dir():
            jobs.append(Job(file, target, f"listed at {origin} as {file}: a folder, not an audio or mel file (a list "
                                          "names files; pass a folder as input= to search it)"))
            continue
        problem = problem or link_problem(file)
        if problem:
            jobs.append(Job(file, target, problem))
            continue
        resolved = _real(target)
        if resolved in sources:
            replaced_inputs.append(f"{target} is the input file {sources[resolved]}")
        elif overwrite and resolved.is_file() and not is_earlier_output(resolved):
            replaced_files.append(str(target))
        if not _inside(resolved, {out_real}):
            jobs.append(Job(file, target, f"its output {target} would be written through a symbolic link "
                                          f"to {resolved}, outside the output folder {out}; not written"))
            continue
        if resolved in taken:
            first, first_origin = taken[resolved]
            if _real(file) == _real(first):
                where = f" ({first_origin}, and again at {origin})" if origin and first_origin else ""
                jobs.append(Job(file, target, f"the same file is listed twice{where}; its output {target} is "
                                              "written once"))
            else:
                jobs.append(Job(file, target, f"its output {target} is also the output of {first}; rename one "
                                              "of them"))
            continue
        taken[resolved] = (file, origin)
        jobs.append(Job(file, target))
    if replaced_inputs:
        raise InferError(f"refusing to run: outputs would replace inputs: {_shown(replaced_inputs)}. "
                         "Choose another output folder")
    if replaced_files:
        raise InferError(f"refusing to run: overwrite=true replaces only earlier outputs of vocoder.infer, and "
                         f"these files are not (recordings, or files of yours): {_shown(replaced_files)}. Choose "
                         "another output folder, or move them away")
    return jobs
