#!/usr/bin/env python3
"""Build the demo speech corpus that ships in ``vocoder/data/demo/``.

Speech is synthesised from ``sentences.txt`` with Festival and Flite voices
(Debian packages), then trimmed, resampled to 24 kHz, peak-normalised and
written as 16-bit mono FLAC with sox.  Only the Python standard library is
used; the external programs are ``text2wave`` (Festival), ``flite``, ``sox``
and ``soxi``.  ``make_corpus.sh`` installs them and calls this script.

Which sentences each voice speaks is fixed (a window of the sentence list
that starts at a different offset for every voice), so re-running the script
reproduces the same file names, texts and splits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


@dataclass(frozen=True)
class Voice:
    name: str  # file-name prefix
    engine: str  # "festival" or "flite"
    voice_id: str  # Festival voice function suffix / Flite voice name
    package: str  # Debian package that provides it
    description: str


VOICES = [
    Voice("kal", "festival", "kal_diphone", "festvox-kallpc16k",
          "US English male, diphone (Festival)"),
    Voice("ked", "festival", "ked_diphone", "festvox-kdlpc16k",
          "US English male, diphone (Festival)"),
    Voice("slt", "festival", "cmu_us_slt_arctic_hts", "festvox-us-slt-hts",
          "US English female, HTS statistical parametric (Festival)"),
    Voice("rms", "flite", "rms", "flite",
          "US English male, clustergen (Flite)"),
    Voice("awb", "flite", "awb", "flite",
          "Scottish English male, clustergen (Flite)"),
]

MIN_SEC, MAX_SEC = 1.0, 6.0


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def synthesise(voice: Voice, text: str, wav: Path) -> None:
    if voice.engine == "festival":
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text + "\n")
            txt = f.name
        try:
            # -scale 0.5: the diphone voices occasionally clip at full scale;
            # the level is restored by the peak normalisation below.
            run(["text2wave", "-eval", f"(voice_{voice.voice_id})",
                 "-scale", "0.5", "-o", str(wav), txt])
        finally:
            os.unlink(txt)
    elif voice.engine == "flite":
        run(["flite", "-voice", voice.voice_id, "-t", text, "-o", str(wav)])
    else:  # pragma: no cover
        raise ValueError(voice.engine)


def postprocess(wav: Path, flac: Path, sr: int, peak_db: float,
                pad_s: float, thresh_db: float) -> None:
    """Trim silence, pad to ``pad_s`` each side, resample, normalise, FLAC."""
    run([
        "sox", "-D",  # no dither: deterministic output, digital-silence pads
        str(wav),
        "-c", "1", "-r", str(sr), "-b", "16", "-C", "8", str(flac),
        # normalise first so the silence threshold is relative to the peak,
        # then trim leading silence, then trailing (via reverse)
        "gain", "-n",
        "silence", "1", "0.01", f"{thresh_db}d",
        "reverse", "silence", "1", "0.01", f"{thresh_db}d", "reverse",
        "pad", str(pad_s), str(pad_s),
        "rate", "-v", str(sr),
        "gain", "-n", str(peak_db),
    ])


def duration(path: Path) -> float:
    return float(run(["soxi", "-D", str(path)]).stdout.strip())


def assign(n_sentences: int, n_voices: int, per_voice: int) -> list[list[int]]:
    """Sentence indices per voice: windows starting at evenly spaced offsets."""
    out = []
    for k in range(n_voices):
        start = k * n_sentences // n_voices
        out.append([(start + i) % n_sentences for i in range(per_voice)])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=Path, default=HERE / "sentences.txt")
    p.add_argument("--out", type=Path, default=REPO / "vocoder" / "data" / "demo")
    p.add_argument("--sr", type=int, default=24000)
    p.add_argument("--per-voice", type=int, default=13,
                   help="utterances per voice (default 13)")
    p.add_argument("--val-positions", default="7,9",
                   help="comma-separated positions within each voice's sentence "
                        "window held out for validation (default 7,9: sentences "
                        "no other voice speaks, of ordinary length)")
    p.add_argument("--peak-db", type=float, default=-1.0)
    p.add_argument("--pad", type=float, default=0.1,
                   help="silence kept before/after speech, seconds")
    p.add_argument("--threshold-db", type=float, default=-50.0,
                   help="level below which leading/trailing audio is silence")
    args = p.parse_args(argv)

    for tool in ("sox", "soxi", "text2wave", "flite"):
        if shutil.which(tool) is None:
            sys.exit(f"error: '{tool}' not found; run make_corpus.sh, which installs it")

    sentences = [s.strip() for s in args.sentences.read_text().splitlines()
                 if s.strip() and not s.lstrip().startswith("#")]
    if len(sentences) < args.per_voice:
        sys.exit("error: fewer sentences than --per-voice")
    plan = assign(len(sentences), len(VOICES), args.per_voice)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.flac"):  # re-runs must not leave stale clips
        old.unlink()

    # Validation: utterances from the middle of each voice's window, whose
    # sentences no other voice speaks (windows only overlap at their ends).
    val_pos = {int(v) for v in args.val_positions.split(",") if v.strip()}
    if not all(0 <= v < args.per_voice for v in val_pos):
        sys.exit("error: --val-positions must lie in [0, --per-voice)")

    train, val, total, bad = [], [], 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        for voice, idxs in zip(VOICES, plan):
            for pos, si in enumerate(idxs):
                name = f"{voice.name}_{si:03d}.flac"
                wav = Path(tmp) / "raw.wav"
                synthesise(voice, sentences[si], wav)
                postprocess(wav, out / name, args.sr, args.peak_db, args.pad,
                            args.threshold_db)
                d = duration(out / name)
                total += d
                if not MIN_SEC <= d <= MAX_SEC:
                    bad.append(f"{name}: {d:.2f} s")
                (val if pos in val_pos else train).append(name)
                print(f"{name}  {d:5.2f} s  {sentences[si]}")

    (out / "train.txt").write_text("".join(f + "\n" for f in sorted(train)))
    (out / "val.txt").write_text("".join(f + "\n" for f in sorted(val)))
    size = sum(f.stat().st_size for f in out.glob("*.flac"))
    print(f"\n{len(train) + len(val)} clips ({len(train)} train, {len(val)} val), "
          f"{total:.1f} s, {size / 1e6:.2f} MB of FLAC in {out}")
    if bad:
        print("clips outside %.0f-%.0f s:\n  " % (MIN_SEC, MAX_SEC) + "\n  ".join(bad),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
