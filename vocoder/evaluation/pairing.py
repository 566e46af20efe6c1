"""Pairing reference and generated audio files by their relative path (without the suffix): folders, .txt and .lst lists, files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..data.files import AUDIO_SUFFIXES, LIST_SUFFIXES, read_filelist


class PairingError(ValueError):
    """A `reference`/`generated` argument that names nothing usable; the message says which and why."""


@dataclass(frozen=True)
class Pair:
    """One row of the evaluation: `name` is the reference's relative path; `error` says why it cannot be scored."""

    name: str
    reference: Path | None
    generated: Path | None
    error: str | None = None


def audio_files(spec: str | os.PathLike, what: str, exclude: tuple[Path, ...] = ()) -> tuple[list[Path], Path]:
    """(audio files, the folder their names are relative to) for a folder (searched recursively,
    leaving out `exclude` folders), a `.txt` or `.lst` list of paths (relative to the list's folder; the
    syntax of `vocoder.data.files.parse_filelist`), or one file."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise PairingError(f"{what}={spec}: does not exist")
    if path.is_dir():
        skip = [p.resolve() for p in exclude if p.resolve() != path.resolve()]
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                       and not any(s == p.resolve() or s in p.resolve().parents for s in skip))
        if not files:
            raise PairingError(f"{what}={spec}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
        return files, path
    if path.suffix.lower() in LIST_SUFFIXES:
        try:
            return read_filelist(path), path.parent
        except (OSError, ValueError) as e:
            raise PairingError(f"{what}={spec}: {e}") from e
    return [path], path.parent


def relative_key(file: Path, root: Path) -> str:
    """`file`'s path under `root` without its suffix ('speaker/utt' for root/speaker/utt.flac); the file
    name alone when it is not under root."""
    return Path(relative_name(file, root)).with_suffix("").as_posix()


def relative_name(file: Path, root: Path) -> str:
    """`file`'s path under `root` ('speaker/utt.flac'); the file name alone when it is not under root."""
    try:
        return file.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return file.name


def _by_key(files: list[Path], root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """{key: file}, and {key: error} for keys that two files share (a.wav and a.flac)."""
    found: dict[str, Path] = {}
    clashes: dict[str, str] = {}
    for file in files:
        key = relative_key(file, root)
        if key in found:
            clashes[key] = f"{found[key]} and {file} both pair as {key!r}; rename one of them"
        else:
            found[key] = file
    return found, clashes


def pair_files(reference: list[Path], reference_root: Path, generated: list[Path], generated_root: Path
               ) -> list[Pair]:
    """A Pair per reference file, matched to the generated file of the same relative path (suffix
    aside); a reference with no generated match, and a generated file with no reference, is a Pair
    with an error. One file on each side is paired whatever the names."""
    if len(reference) == 1 and len(generated) == 1:
        return [Pair(reference[0].name, reference[0], generated[0])]
    refs, ref_clashes = _by_key(reference, reference_root)
    gens, gen_clashes = _by_key(generated, generated_root)
    pairs = []
    for key, ref in refs.items():
        name = relative_name(ref, reference_root)
        if key in ref_clashes or key in gen_clashes:
            pairs.append(Pair(name, ref, gens.get(key), ref_clashes.get(key) or gen_clashes[key]))
        elif key not in gens:
            pairs.append(Pair(name, ref, None, f"missing: no generated file {key}.* under {generated_root}"))
        else:
            pairs.append(Pair(name, ref, gens[key]))
    for key, gen in gens.items():
        if key not in refs:
            pairs.append(Pair(relative_name(gen, generated_root), None, gen,
                              f"missing: no reference file {key}.* under {reference_root} for {gen}"))
    return pairs
