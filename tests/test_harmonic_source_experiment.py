"""recipes/demo/harmonic_source.py (the README's harmonic-source experiment) runs: a few steps on two
clips, with the source and pitch predictor and without, and its parts keep their contracts."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest
import torch
from child_env import ROOT, child_env

SCRIPT = ROOT / "recipes" / "demo" / "harmonic_source.py"


def _module():
    spec = importlib.util.spec_from_file_location("harmonic_source", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pitch_bins_round_trip_and_the_source_follows_the_f0():
    hs = _module()
    f0 = torch.tensor([[60.0, 110.0, 220.0, 440.0]])
    bins = hs.PitchPredictor.bin_of(f0)
    logits = torch.full((1, hs.PITCH_BINS + 1, 4), -30.0)
    logits[0, bins[0], torch.arange(4)] = 30.0
    logits[0, hs.PITCH_BINS] = 5.0
    decoded, voiced = hs.PitchPredictor.decode(logits)
    assert decoded.shape == voiced.shape == (1, 4 * hs.HOP_SIZE)
    centres = decoded[0, hs.HOP_SIZE // 2::hs.HOP_SIZE]
    step_cents = 1200 * math.log2(hs.F0_MAX / hs.F0_MIN) / (hs.PITCH_BINS - 1)
    assert torch.all((1200 * torch.log2(centres / f0[0])).abs() <= step_cents / 2 + 1e-3)
    assert torch.all(voiced == 1)

    source = hs.HarmonicSource().eval()
    with torch.no_grad():
        source.merge.weight.zero_()
        source.merge.weight[0, 0] = 1.0  # the fundamental alone
        source.merge.bias.zero_()
        n = hs.RATE  # one second
        out = source(torch.full((1, n), 200.0), torch.ones(1, n))[0, 0]
    spectrum = torch.fft.rfft(out).abs()
    assert int(spectrum.argmax()) == 200  # 1 s of audio: bin k is k Hz


@pytest.mark.parametrize("args", [["--source", "harmonic", "--predictor-channels", "8"],
                                  ["--source", "none", "--init", "demo"]], ids=["harmonic", "plain-demo"])
def test_the_experiment_runs_and_writes_its_results(tmp_path, args):
    cmd = [sys.executable, str(SCRIPT), "--name", "t", "--train-files", "2", "--val-files", "1", "--batch", "2",
           "--seconds", "0.01", "--eval-every", "1", "--out", str(tmp_path), "--keep", "awb_048.flac", *args]
    done = subprocess.run(cmd, env=child_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["steps"] >= 1
    kinds = {row["f0"] for row in record["results"]}
    assert kinds == ({"true", "predicted"} if "harmonic" in args else {"true"})
    assert all(math.isfinite(row["pesq"]) and 1.0 <= row["pesq"] <= 4.7 for row in record["results"])
    kept = sorted(p.name for p in tmp_path.glob("t_awb_048_step*.wav"))
    assert kept == sorted(f"t_awb_048_step{row['step']}_{row['f0']}.wav" for row in record["results"])
