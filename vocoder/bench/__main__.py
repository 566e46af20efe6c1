"""`python -m vocoder.bench SUITE`: run a benchmark suite; print its markdown table, write
SUITE.json / .csv / .md and (kernels, train, infer) SUITE.png under --out.

    python -m vocoder.bench kernels                  # Snake, SnakeBeta, anti-aliased activation
    python -m vocoder.bench train --steps gan        # full GAN step, segments 8192 … 262144
    python -m vocoder.bench infer
    python -m vocoder.bench stream                   # time per streamed piece, time to first audio
    python -m vocoder.bench precision --checkpoints PATH,...   # SNR vs fp32, M-STFT/PESQ vs recordings
    python -m vocoder.bench export --threads 1,2    # ONNX Runtime vs PyTorch on the CPU (needs the export extra)
    python -m vocoder.bench train --device cpu --model tiny --discriminator tiny --segments 2048   # smoke run

Figures are meant for a CUDA device; on the CPU the suites run (small sizes) as a smoke test, the
fused ops take the plain-PyTorch path unless VOCODER_BACKEND=triton with TRITON_INTERPRET=1, and
there are no allocator peaks (what autograd saves is still reported).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from ..models.generator import check_mel_settings
from ..runtime import PRECISIONS, resolve_device, set_cudnn_benchmark
from . import report

SUITES = ("kernels", "train", "infer", "stream", "precision", "export")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vocoder.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=SUITES)
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench-results")),
                   help="folder for the JSON, CSV, markdown and PNG files (default: $OUT or ./bench-results)")
    p.add_argument("--device", default="auto", help="cuda, cpu or auto (default: cuda when available)")
    p.add_argument("--quick", action="store_true", help="kernels: small shapes, for a smoke test")
    p.add_argument("--model", default="bigvgan_v2_24khz_100band_256x", help="train/infer: a vocoder/configs/model name")
    p.add_argument("--mel", default="24khz_100band", help="train/infer: the vocoder/configs/mel settings of the model")
    p.add_argument("--discriminator", default="bigvgan_v1",
                   help="train: the vocoder/configs/discriminator set of the GAN step (default: MPD + MRD)")
    p.add_argument("--steps", type=_names, default=("generator", "gan"),
                   help="train: generator and/or gan, comma-separated")
    p.add_argument("--variants", type=_names, default=("fused", "eager", "eager+ckpt", "fused+ckpt"),
                   help="train: comma-separated; nvidia (NVIDIA's own train.py step, needs bigvgan), or fused or eager "
                        "then +options from ckpt, dckpt, "
                        "compile, cudagraphs, wn-each-use, split-d (e.g. fused+ckpt+dckpt)")
    p.add_argument("--profile", action="store_true",
                   help="train: profile one more step: GPU kernel time and count, step time over kernel time; "
                        "export: ONNX Runtime's per-op profile (the op types taking the most time)")
    p.add_argument("--segments", type=_ints, default=(8192, 32768, 65536, 131072, 262144),
                   help="train: comma-separated segment lengths in samples")
    p.add_argument("--batch", type=int, default=4, help="train: segments per batch")
    p.add_argument("--frames", type=_ints, default=(256, 2048, 16384, 131072),
                   help="infer: comma-separated mel lengths in frames")
    p.add_argument("--precisions", type=_names, default=None,
                   help="infer/stream: comma-separated subset of fp32, tf32, bf16, fp16 "
                        "(default: fp32,tf32,bf16 for infer, tf32 for stream); "
                        "precision: default fp32,bf16 on the CPU, all four on CUDA")
    p.add_argument("--piece-frames", type=int, default=32, help="stream: mel frames per piece")
    p.add_argument("--stream-frames", type=int, default=1024, help="stream: mel frames streamed per run")
    p.add_argument("--checkpoints", type=_names, default=None,
                   help="precision: comma-separated checkpoints (paths or hub ids, any that vocoder.infer takes; "
                        "default: the shipped demo model)")
    p.add_argument("--clips", type=int, default=10, help="precision: how many held-out demo clips to resynthesise")
    p.add_argument("--seconds", type=float, default=None,
                   help="precision: the first seconds of each clip (default 3); export: seconds of audio per call "
                        "(default 10)")
    p.add_argument("--activations", type=_names, default=None,
                   help="infer: comma-separated subset of fused, eager, nvidia (default: all that run here)")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="let cuDNN time its convolution algorithms for each new shape and keep the fastest "
                        "(torch.backends.cudnn.benchmark; train.cudnn_benchmark, infer's cudnn_benchmark=)")
    p.add_argument("--repeats", type=int, default=3,
                   help="train/infer: timed repetitions (median); export: (minimum)")
    p.add_argument("--threads", type=_ints, default=(1,), help="export: CPU threads of both runtimes, comma-separated")
    p.add_argument("--export-models", type=_names, default=("demo", "bigvgan_v2_24khz_100band_256x"),
                   help="export: comma-separated: demo and/or vocoder/configs/model names (random weights, --mel settings)")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    try:
        device = str(resolve_device(args.device, name="--device"))
    except ValueError as error:
        p.error(f"{error} (--device cpu is a smoke run)")
    from . import infer, kernels, precision, train

    bad = ([s for s in args.steps if s not in train.STEPS] + [v for v in args.precisions or () if v not in PRECISIONS]
           + [a for a in args.activations or () if a not in infer.ACTIVATIONS])
    if bad:
        p.error(f"unknown --steps/--precisions/--activations value(s): {', '.join(bad)}")
    if args.piece_frames < 1 or args.stream_frames < 1:
        p.error(f"--piece-frames and --stream-frames must be >= 1, got {args.piece_frames}, {args.stream_frames}")
    for variant in args.variants:
        try:
            train.Variant.parse(variant)
        except ValueError as error:
            p.error(str(error))
    try:
        check_mel_settings(train.load_config("model", args.model), train.load_config("mel", args.mel))
        train.load_config("discriminator", args.discriminator)
    except ValueError as error:
        p.error(str(error))
    args.out.mkdir(parents=True, exist_ok=True)
    set_cudnn_benchmark(args.cudnn_benchmark)
    png = args.out / f"{args.suite}.png"
    if args.suite == "export":
        from . import export

        seconds = 10.0 if args.seconds is None else args.seconds
        if seconds <= 0 or args.repeats < 1:
            p.error(f"--seconds must be > 0 and --repeats >= 1, got {seconds}, {args.repeats}")
        rows = export.run(args.export_models, seconds, args.threads, args.repeats,
                          args.out / "export-profile" if args.profile else None, args.mel)
        device = "cpu"
    elif args.suite == "kernels":
        rows = kernels.run(quick=args.quick, device=device)
        kernels.plot(rows, png)
    elif args.suite == "infer":
        rows = infer.run(args.model, args.frames, args.precisions or ("fp32", "tf32", "bf16"), args.repeats, device,
                         args.mel, args.activations)
        infer.plot(rows, png)
    elif args.suite == "stream":
        rows = infer.stream_rows(args.model, args.stream_frames, args.piece_frames, args.precisions or ("tf32",),
                                 device, args.mel, repeats=args.repeats)
    elif args.suite == "precision":
        args.seconds = 3.0 if args.seconds is None else args.seconds
        if args.clips < 1 or args.seconds <= 0:
            p.error(f"--clips must be >= 1 and --seconds > 0, got {args.clips}, {args.seconds}")
        try:
            rows, notes = precision.run(args.checkpoints or precision.DEFAULT_CHECKPOINTS, args.precisions, device,
                                        args.clips, args.seconds, args.model, args.mel)
        except (OSError, ValueError, RuntimeError) as error:  # a checkpoint that does not load: one line
            p.error(" ".join(str(error).split()))
        print("\n".join(notes))
    else:
        rows = train.run(args.model, args.segments, args.batch, args.repeats, device, args.variants,
                         args.steps, args.discriminator, args.mel, args.profile)
        gib = torch.cuda.get_device_properties(device).total_memory / 2**30 if device.startswith("cuda") else None
        train.plot(rows, png, gib)
    if args.cudnn_benchmark:
        for row in rows:
            row["cudnn_benchmark"] = True
    print(report.write(rows, args.out, args.suite, device))


if __name__ == "__main__":
    main()
