"""Export suite: ONNX Runtime (CPU) against PyTorch (CPU) on the same mel with the same thread count,
for the demo model (its shipped weights) and a BigVGAN-v2-shaped model (random weights): time per
call (the minimum of the repeats: the least disturbed by other work on the machine) and the process
CPU time it took, real-time factors, export time, and the largest difference between the two outputs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..checkpoint import load_model
from ..models import Generator
from ..vocoder import Vocoder
from .train import load_config

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "demo_pretrained.pt"
MODELS = ("demo", "bigvgan_v2_24khz_100band_256x")


def _model(name: str, mel_name: str) -> tuple[Generator, dict]:
    """(generator, mel settings): the demo's shipped weights, or random weights of a configs/model shape
    with the configs/mel settings `mel_name`."""
    if name == "demo":
        return load_model(DEMO_CHECKPOINT)
    torch.manual_seed(0)
    return Generator.from_config({**load_config("model", name), "init": "torch"}), load_config("mel", mel_name)


def _fastest(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The shortest wall-clock time and the least process CPU time of `repeats` calls after one warm-up
    call, in seconds. On a shared machine the CPU time is the steadier figure of the work a call takes
    (it leaves out the time the process waited for a core); with one thread it bounds the wall time
    the call would take on an idle core."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def run(models: tuple[str, ...] = MODELS, seconds: float = 10.0, threads: tuple[int, ...] = (1,), repeats: int = 3,
        profile_dir: Path | None = None, mel_name: str = "24khz_100band") -> list[dict]:
    """One row per (model, thread count, runtime); models other than the demo get random weights and the
    mel settings `mel_name`. `profile_dir`: also write ONNX Runtime's per-op profile there and report
    the op types that take the most time."""
    import onnxruntime

    rows = []
    for name in models:
        generator, mel_settings = _model(name, mel_name)
        voc = Vocoder(generator, mel_settings, device="cpu", precision="fp32")
        frames = round(seconds * voc.sampling_rate / voc.hop_size)
        torch.manual_seed(1)
        mel = voc.mel_spectrogram(torch.randn(frames * voc.hop_size) * 0.1)[:, :frames]  # speech-like levels
        feed = {"mel": mel[None].numpy()}
        audio_s = frames * voc.hop_size / voc.sampling_rate
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            path = voc.export_onnx(Path(folder) / f"{name}.onnx")
            export_s = time.perf_counter() - start
            for count in threads:
                torch.set_num_threads(count)
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = count, 1
                session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                difference = float((torch.from_numpy(session.run(None, feed)[0][0]) - voc(mel)).abs().max())
                timings = {"pytorch": _fastest(lambda: voc(mel), repeats),
                           "onnxruntime": _fastest(lambda: session.run(None, feed), repeats)}
                top = _profile(path, options, feed, profile_dir) if profile_dir is not None else None
                for runtime, (spent, cpu) in timings.items():
                    row = {"model": name, "runtime": runtime, "threads": count, "mel_frames": frames,
                           "audio_s": round(audio_s, 3), "time_s": spent, "rtf": spent / audio_s,
                           "realtime_x": audio_s / spent, "cpu_s": cpu, "cpu_rtf": cpu / audio_s}
                    if runtime == "onnxruntime":
                        row.update(export_s=round(export_s, 1), max_abs_diff=difference)
                        if top:
                            row["top_ops"] = top
                    rows.append(row)
    return rows


def _profile(path: Path, options, feed: dict, out: Path) -> str:
    """Run once with ONNX Runtime's profiler; the five op types that take the most time, with shares."""
    import json

    import onnxruntime

    out.mkdir(parents=True, exist_ok=True)
    options.enable_profiling = True
    options.profile_file_prefix = str(out / path.stem)
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    options.enable_profiling = False
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + float(event.get("dur", 0))
    total = sum(by_op.values()) or 1.0
    top = sorted(by_op.items(), key=lambda item: -item[1])[:5]
    return ", ".join(f"{op} {share / total:.0%}" for op, share in top)
