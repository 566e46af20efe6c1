"""Write a small LibriTTS-shaped tree of synthetic 24 kHz audio, to try the pipeline without a download.

    python recipes/libritts/make_synthetic.py /tmp/FakeLibriTTS [--utterances 64] [--seconds 6]

Each utterance is a few harmonic tones with vibrato plus a little noise (not speech); the layout
(<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<utt>.wav with .normalized.txt) is LibriTTS's,
so `+experiment=libritts data.root=/tmp/FakeLibriTTS` runs on it unchanged.
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 24000


def utterance(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = rng.uniform(90, 250) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 12))
    wav *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) ** 2
    wav += 0.01 * rng.standard_normal(t.size)
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for subset, count in (("train-clean-100", args.utterances), ("dev-clean", max(2, args.utterances // 16))):
        for i in range(count):
            speaker, chapter = 100 + i % 4, 2000 + i % 2
            folder = args.root / subset / str(speaker) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{speaker}_{chapter}_{i:06d}"
            sf.write(folder / f"{stem}.wav", utterance(rng, args.seconds * rng.uniform(0.7, 1.3)), RATE)
            (folder / f"{stem}.normalized.txt").write_text("synthetic tones, not speech\n")
    print(f"wrote a LibriTTS-shaped tree under {args.root}")


if __name__ == "__main__":
    main()
