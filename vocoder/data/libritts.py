"""LibriTTS (openslr.org/60): utterances of chosen subsets, and `path|text` filelists of them.

Layout of an unpacked root: `<root>/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<utt>.wav`,
with `<...>.normalized.txt` beside each wav.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other",
           "train-clean-100", "train-clean-360", "train-other-500")


def _subset_list(subsets: str | Iterable[str]) -> list[str]:
    """'a,b' or ['a', 'b'] as a list of names."""
    names = subsets.split(",") if isinstance(subsets, str) else list(subsets)
    return [n.strip() for n in names if n.strip()]


def _root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"LibriTTS root {root} does not exist or is not a folder "
                                "(download and unpack it: see recipes/libritts/README.md)")
    return root


def _subset_dir(root: Path, subset: str) -> Path:
    """`root/subset`, or an error naming it and listing the subsets that are there."""
    folder = root / subset
    if folder.is_dir():
        return folder
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    hint = ""
    if (root / "LibriTTS" / subset).is_dir():
        hint = f"; did you mean {root / 'LibriTTS'}, the folder that holds the subsets?"
    raise FileNotFoundError(f"LibriTTS subset {subset!r} not found in {root}; folders found: "
                            f"{', '.join(found) or 'none'}{hint}")


def _text(wav: Path) -> str:
    """The utterance's normalized text (else original, else empty), on one line without '|'."""
    for kind in ("normalized", "original"):
        txt = wav.with_name(f"{wav.stem}.{kind}.txt")
        if txt.is_file():
            return " ".join(txt.read_text(encoding="utf-8").replace("|", " ").split())
    return ""


def libritts_utterances(root: str | Path, subsets: str | Iterable[str]) -> list[tuple[Path, str]]:
    """(wav path relative to `root`, text) of every utterance in `subsets`, sorted by path."""
    root, names = _root(root), _subset_list(subsets)
    if not names:
        raise ValueError("no LibriTTS subsets given")
    utterances = []
    for name in names:
        wavs = sorted(_subset_dir(root, name).glob("*/*/*.wav"))
        if not wavs:
            raise ValueError(f"LibriTTS subset {root / name} holds no <speaker>/<chapter>/*.wav files")
        utterances += [(w.relative_to(root), _text(w)) for w in wavs]
    return sorted(utterances, key=lambda u: u[0].parts)


def libritts_files(root: str | Path, subsets: str | Iterable[str]) -> list[Path]:
    """Full paths of every wav in `subsets` of the LibriTTS `root`, sorted."""
    root = Path(root).expanduser()
    return [root / rel for rel, _ in libritts_utterances(root, subsets)]


def write_filelist(root: str | Path, subsets: str | Iterable[str], out: str | Path) -> int:
    """Write `path|text` lines (paths relative to `root`) for `subsets` to `out`; the line count."""
    utterances = libritts_utterances(root, subsets)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{rel.as_posix()}|{text}\n" for rel, text in utterances), encoding="utf-8")
    return len(utterances)


def prepare(root: str | Path, train: str | Iterable[str], val: str | Iterable[str],
            out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write train.txt and val.txt (default: into `root`) and print their sizes; their paths."""
    root = _root(root)
    out_dir = Path(out_dir).expanduser() if out_dir is not None else root
    written = {}
    for split, subsets in (("train", _subset_list(train)), ("val", _subset_list(val))):
        if not subsets:
            continue
        path = out_dir / f"{split}.txt"
        count = write_filelist(root, subsets, path)
        print(f"{path}: {count} utterances from {', '.join(subsets)}", flush=True)
        written[split] = path
    return written


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Command line of recipes/libritts/prepare.py."""
    parser = argparse.ArgumentParser(description="Write LibriTTS filelists (path|text, paths relative "
                                                 "to the root) for vocoder training.")
    parser.add_argument("root", help="the unpacked LibriTTS folder (holding train-clean-100, ...)")
    parser.add_argument("--train", default="train-clean-100,train-clean-360,train-other-500",
                        help="comma-separated training subsets (default: %(default)s)")
    parser.add_argument("--val", default="dev-clean",
                        help="comma-separated validation subsets (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="folder for train.txt and val.txt (default: the root)")
    args = parser.parse_args(argv)
    try:
        return prepare(args.root, args.train, args.val, args.out)
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
