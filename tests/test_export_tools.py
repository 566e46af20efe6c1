"""examples/export_onnx.py runs as documented and its ONNX Runtime audio equals `vocoder.infer`'s;
`python -m vocoder.bench export` measures both runtimes on the same mel."""

import json
import subprocess
import sys

import pytest
import soundfile

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from child_env import ROOT, child_env  # noqa: E402
from test_export import MEL, small_generator  # noqa: E402

from vocoder.bench.__main__ import main as bench  # noqa: E402
from vocoder.checkpoint import save_generator  # noqa: E402
from vocoder.infer import run as infer  # noqa: E402

SPEECH = ROOT / "vocoder" / "data" / "demo" / "awb_000.flac"


def test_example_matches_vocoder_infer(tmp_path):
    checkpoint = tmp_path / "model.pt"
    save_generator(checkpoint, small_generator("v1"), MEL)
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "export_onnx.py"), str(checkpoint), str(SPEECH),
                          str(tmp_path / "model.onnx"), str(tmp_path / "onnx.wav")],
                         env=child_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert infer(str(checkpoint), str(SPEECH), str(tmp_path / "infer"), device="cpu").done == 1
    onnx_audio, rate = soundfile.read(tmp_path / "onnx.wav", dtype="float32")
    infer_audio, infer_rate = soundfile.read(tmp_path / "infer" / "awb_000.wav", dtype="float32")
    assert rate == infer_rate == MEL["sampling_rate"] and onnx_audio.shape == infer_audio.shape
    assert abs(onnx_audio).max() > 0.05
    # vocoder.infer writes 16-bit PCM (full scale 32767): its rounding is within 1.6e-5, its scale within 3.1e-5
    assert abs(onnx_audio - infer_audio).max() <= 1e-4
    # run again onto the same paths: one line, nothing replaced
    before = {p: p.read_bytes() for p in (tmp_path / "model.onnx", tmp_path / "onnx.wav")}
    again = subprocess.run([sys.executable, str(ROOT / "examples" / "export_onnx.py"), str(checkpoint), str(SPEECH),
                            str(tmp_path / "model.onnx"), str(tmp_path / "onnx.wav")],
                           env=child_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines() == [f"export_onnx.py: {tmp_path / 'model.onnx'} already exists; give a new path"]
    assert all(p.read_bytes() == content for p, content in before.items())


def test_bench_export_rows(tmp_path):
    bench(["export", "--export-models", "tiny", "--seconds", "0.2", "--repeats", "1", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "export.json").read_text())["rows"]
    assert [r["runtime"] for r in rows] == ["pytorch", "onnxruntime"]
    assert all(r["model"] == "tiny" and r["threads"] == 1 and r["time_s"] > 0 and r["rtf"] > 0 and r["cpu_s"] > 0
               for r in rows)
    assert rows[1]["max_abs_diff"] <= 1e-4 and rows[1]["export_s"] > 0
