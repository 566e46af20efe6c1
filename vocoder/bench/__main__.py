"""`python -m vocoder.bench SUITE [--out DIR] [--quick]`: run a benchmark suite, print its table."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from . import report

SUITES = ("kernels",)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vocoder.bench", description=__doc__)
    parser.add_argument("suite", choices=SUITES)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench-results")),
                        help="folder for the JSON, CSV and markdown files (default: $OUT or ./bench-results)")
    parser.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error(f"the {args.suite} suite measures GPU kernels and needs a CUDA device")
    from . import kernels

    rows = {"kernels": kernels.run}[args.suite](quick=args.quick)
    print(report.write(rows, args.out, args.suite))


if __name__ == "__main__":
    main()
