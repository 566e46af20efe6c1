#!/usr/bin/env python3
"""Write the generator of a training checkpoint (step_N.pt) on its own, with its model and mel record:
how recipes/demo/pretrain.sh makes vocoder/data/demo_pretrained.pt (what `+experiment=demo` starts from)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vocoder.checkpoint import CheckpointError, load_model, save_generator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path,
                        help="a training checkpoint, e.g. runs/demo_pretrain/checkpoints/step_00002250.pt")
    parser.add_argument("output", type=Path, help="where to write the generator-only checkpoint")
    parser.add_argument("--half", action="store_true",
                        help="store the weights in float16 (half the size; loading casts them back to float32)")
    args = parser.parse_args(argv)
    try:
        generator, mel = load_model(args.checkpoint)
    except (CheckpointError, FileNotFoundError, OSError) as e:
        print(f"export_generator: error: {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    save_generator(args.output, generator, mel, dtype=torch.float16 if args.half else None)
    params = sum(p.numel() for p in generator.parameters())
    print(f"wrote {args.output}: {params:,} parameters, {args.output.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
