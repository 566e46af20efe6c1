"""`python -m vocoder.export checkpoint=CKPT output=model.onnx`: a vocoder as an ONNX file for ONNX Runtime,
TensorRT and other runtimes (`vocoder.onnx_export`; options: vocoder/configs/export.yaml).

`checkpoint` takes what `vocoder.infer` takes: ours, a training checkpoint, NVIDIA's folder or file, a
Hugging Face hub id. The output is checked before the model is loaded; an existing file is kept unless
`overwrite=true`. A user's mistake is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .booleans import parse_bool
from .checkpoint import CheckpointError
from .cli import EntryPoint, error_line
from .onnx_export import OPSET, ExportError, check_options, check_output_path, read_metadata
from .vocoder import Vocoder

CONFIG = Path(__file__).resolve().parent / "configs" / "export.yaml"
CLI = EntryPoint("vocoder.export", CONFIG.stem,
                 "usage: python -m vocoder.export checkpoint=CKPT output=model.onnx [precision=fp16] [frames=N] "
                 "[key=value ...]")


def run(checkpoint: str, output: str, revision: str | None = None, precision: str = "fp32",
        frames: int | None = None, batch: int | None = None, overwrite: bool | str = False) -> Path:
    """The whole command from plain values: check the options and the output, load the checkpoint, export,
    report."""
    overwrite = parse_bool(overwrite, "overwrite")
    if not str(checkpoint).strip():
        raise ExportError("checkpoint must be a path or a hub id, got ''")
    frames, batch = check_options(precision, frames, batch)
    out = check_output_path(str(output), overwrite)
    start = time.perf_counter()
    voc = Vocoder.from_checkpoint(str(checkpoint), device="cpu", revision=revision)
    path = voc.export_onnx(out, precision=precision, frames=frames, batch=batch, overwrite=overwrite)
    meta = read_metadata(path)
    shape = f"{meta['batch']} × {meta['num_mels']} × {meta['frames']} mel"
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, opset {OPSET}, {precision}; input 'mel' "
          f"{shape}, output 'audio' at {meta['sampling_rate']} Hz, {meta['hop_size']} samples per frame) "
          f"in {time.perf_counter() - start:.1f} s", flush=True)
    return path


@hydra.main(config_path=str(CONFIG.parent), config_name=CONFIG.stem, version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry: `key=value` overrides against vocoder/configs/export.yaml; exit status 2 for a bad
    argument, checkpoint or output path."""
    options = CLI.options(cfg)
    try:
        run(**options)
    except (ExportError, CheckpointError, FileNotFoundError, ValueError) as e:
        CLI.fail(error_line(e))


def cli() -> None:
    """`python -m vocoder.export key=value ...`: the arguments checked (`vocoder.cli`), then `main`."""
    CLI.check_argv(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()
