"""`python -m vocoder.bench SUITE [--out DIR] [--quick]`: run a benchmark suite, print its table."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from . import report

SUITES = ("kernels", "train", "infer")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vocoder.bench", description=__doc__)
    parser.add_argument("suite", choices=SUITES)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench-results")),
                        help="folder for the JSON, CSV and markdown files (default: $OUT or ./bench-results)")
    parser.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
    parser.add_argument("--model", default="bigvgan_v2_24khz_100band_256x", help="train suite: configs/model name")
    parser.add_argument("--segments", default="8192,32768,65536,131072,262144",
                        help="train suite: comma-separated segment lengths (batch 4)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error(f"the {args.suite} suite measures GPU work and needs a CUDA device")
    if args.suite == "kernels":
        from . import kernels

        rows = kernels.run(quick=args.quick)
    elif args.suite == "infer":
        from . import infer

        rows = infer.run(args.model)
    else:
        from . import train

        rows = train.run(args.model, tuple(int(s) for s in args.segments.split(",")))
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        args.out.mkdir(parents=True, exist_ok=True)
        train.plot(rows, args.out / "train.png", gib)
    print(report.write(rows, args.out, args.suite))


if __name__ == "__main__":
    main()
