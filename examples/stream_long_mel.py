"""Stream a long mel through `Vocoder.stream` in random-sized chunks, as a TTS model would produce it,
write the wav, and print the latency: look-ahead frames, time to first audio, time per piece.

    python examples/stream_long_mel.py --checkpoint runs/demo/checkpoints/step_00000300.pt
    python examples/stream_long_mel.py --checkpoint nvidia/bigvgan_v2_24khz_100band_256x --device cuda
    python examples/stream_long_mel.py --random-weights tiny        # latency only: the audio is noise

The mel is that of the demo corpus's clips joined (--seconds of speech), or of --audio. The streamed
audio is checked against one offline call, `voc(mel)`, and the difference is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

import vocoder.data
from vocoder import Vocoder
from vocoder.audio import load_audio, save_audio
from vocoder.bench.train import load_config
from vocoder.models import Generator

DEMO = Path(vocoder.data.__file__).parent / "demo"


def speech(voc: Vocoder, audio: Path | None, seconds: float) -> torch.Tensor:
    """`audio` at the model's rate, or the demo corpus's clips joined until `seconds` long."""
    if audio is not None:
        return load_audio(audio, voc.sampling_rate)[0]
    clips, total = [], 0
    for path in sorted(DEMO.glob("*.flac")):
        clips.append(load_audio(path, voc.sampling_rate)[0])
        total += clips[-1].numel()
        if total >= seconds * voc.sampling_rate:
            break
    return torch.cat(clips)[:int(seconds * voc.sampling_rate)]


def chunked(mel: torch.Tensor, largest: int, arrivals: list[tuple[int, float]],
            seed: int = 0) -> Iterator[torch.Tensor]:
    """`mel` in chunks of 1..largest frames; records (frames received so far, time) as each is handed over."""
    rng = torch.Generator().manual_seed(seed)
    start = 0
    while start < mel.shape[-1]:
        stop = min(mel.shape[-1], start + int(torch.randint(1, largest + 1, (1,), generator=rng)))
        arrivals.append((stop, time.perf_counter()))
        yield mel[:, start:stop]
        start = stop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a checkpoint path, NVIDIA folder, or Hugging Face hub id")
    model.add_argument("--random-weights", metavar="MODEL", help="a vocoder/configs/model name with random weights")
    p.add_argument("--mel", default="24khz_100band",
                   help="with --random-weights: a vocoder/configs/mel name (default 24khz_100band)")
    p.add_argument("--audio", type=Path, help="speech to take the mel from (default: the demo corpus)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the demo-corpus speech (default 30)")
    p.add_argument("--piece-frames", type=int, default=32, help="mel frames per streamed piece (default 32)")
    p.add_argument("--largest-chunk", type=int, default=40, help="chunks of 1..N mel frames (default 40)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--precision", default="fp32", help="fp32, tf32, bf16 or fp16 (default fp32)")
    p.add_argument("--out", type=Path, default=Path("streamed.wav"), help="wav to write (default streamed.wav)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = p.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        print(f"stream_long_mel: error: {args.out} exists (--overwrite replaces it)", file=sys.stderr)
        return 2
    try:
        if args.checkpoint:
            voc = Vocoder.from_checkpoint(args.checkpoint, device=args.device, precision=args.precision)
        else:
            torch.manual_seed(0)
            voc = Vocoder(Generator.from_config(load_config("model", args.random_weights)),
                          load_config("mel", args.mel), device=args.device, precision=args.precision)
        mel = voc.mel_spectrogram(speech(voc, args.audio, args.seconds))
    except (OSError, ValueError, RuntimeError) as e:
        print(f"stream_long_mel: error: {e}", file=sys.stderr)
        return 2
    width, overlap, frames = args.piece_frames, voc.overlap_frames, mel.shape[-1]
    sync = torch.cuda.synchronize if voc.device.type == "cuda" else (lambda: None)
    torch.cat(list(voc.stream([mel[:, :3 * width + 2 * overlap]], width)))  # warm-up: each window shape once
    sync()

    arrivals: list[tuple[int, float]] = []
    pieces, delays = [], []
    begin = time.perf_counter()
    for i, piece in enumerate(voc.stream(chunked(mel, args.largest_chunk, arrivals), width)):
        sync()
        now = time.perf_counter()
        needed = min(frames, (i + 1) * width + overlap)  # frames the piece waits for (the policy)
        arrived = next(t for received, t in arrivals if received >= needed)
        delays.append(now - arrived)
        pieces.append(piece)
    elapsed = time.perf_counter() - begin
    streamed = torch.cat(pieces)
    offline = voc(mel)
    save_audio(args.out, streamed.cpu(), voc.sampling_rate, overwrite=args.overwrite)

    ms = 1e3
    hop_ms = voc.hop_size / voc.sampling_rate * ms
    seconds = streamed.numel() / voc.sampling_rate
    steady = sorted(delays[:-1] or delays)
    print(f"{voc}")
    print(f"mel: {frames} frames ({seconds:.1f} s) in chunks of 1..{args.largest_chunk} frames -> "
          f"{len(pieces)} pieces of {width} frames ({width * hop_ms:.0f} ms of audio each)")
    print(f"look-ahead: {overlap} frames ({overlap * hop_ms:.0f} ms of audio); the first piece needs "
          f"{width + overlap} frames ({(width + overlap) * hop_ms:.0f} ms)")
    print(f"time to first audio: {delays[0] * ms:.1f} ms after its last frame arrived; per piece: min "
          f"{steady[0] * ms:.1f} ms, median {steady[len(steady) // 2] * ms:.1f} ms, max {max(delays) * ms:.1f} ms")
    print(f"stream: {elapsed:.2f} s for {seconds:.1f} s of audio (real-time factor {elapsed / seconds:.3f})")
    print(f"max |streamed - offline| = {(streamed - offline).abs().max().item():.2e}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
