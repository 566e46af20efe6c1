"""Envelope correlation and silent-mel RMS (vocoder.evaluation.envelope): known answers, undefined cases,
and both in `python -m vocoder.evaluate`'s outputs."""

import json
import math
from pathlib import Path

import pytest
import soundfile as sf
import torch

from vocoder.audio import GriffinLimVocoder, MelSpectrogram
from vocoder.evaluate import run
from vocoder.evaluation import METRICS, UndefinedMetric, envelope_correlation, score_pair, silent_mel_rms
from vocoder.evaluation.envelope import frame_rms_db

ROOT = Path(__file__).resolve().parents[1]
SR = 24000


def speech(seconds: float = 1.5) -> torch.Tensor:
    wav, sr = sf.read(ROOT / "vocoder" / "data" / "demo" / "awb_048.flac", dtype="float32")
    return torch.from_numpy(wav[: int(seconds * sr)].copy())


def test_frame_rms_in_db_with_a_floor():
    tone = 0.5 * torch.sin(2 * math.pi * 100 * torch.arange(SR) / SR)  # 10 ms = one period of 100 Hz
    db = frame_rms_db(torch.cat([tone, torch.zeros(SR)]), SR)
    assert db.shape == (200,)
    assert torch.allclose(db[:100], torch.full((100,), 20 * math.log10(0.5 / math.sqrt(2))), atol=1e-3)
    assert torch.equal(db[100:], torch.full((100,), -80.0))


def test_envelope_correlation_known_answers():
    ref = speech()
    assert envelope_correlation(ref, ref, SR) == pytest.approx(1.0)
    assert envelope_correlation(ref, 0.1 * ref, SR) > 0.97  # level does not matter, but for frames sent under the floor
    # a drone that is loud where the speech is quiet: its envelope in dB is the speech's mirrored
    db = frame_rms_db(ref, SR)
    n = SR // 100
    mirrored = torch.repeat_interleave(10 ** ((-db - 80) / 20), n)
    drone = mirrored * math.sqrt(2) * torch.sin(2 * math.pi * 100 * torch.arange(mirrored.numel()) / SR)
    assert envelope_correlation(ref[: drone.numel()], drone, SR) == pytest.approx(-1.0, abs=0.02)
    with pytest.raises(UndefinedMetric, match="constant envelope"):
        envelope_correlation(ref, torch.zeros_like(ref), SR)
    with pytest.raises(UndefinedMetric, match="two 10 ms frames"):
        envelope_correlation(ref[:300], ref[:300], SR)


def test_score_pair_reports_env_corr():
    ref = speech()
    scores = score_pair(ref, ref, SR, metrics=["env_corr"])
    assert "env_corr" in METRICS and scores["env_corr"] == pytest.approx(1.0)
    silent = score_pair(ref, torch.zeros_like(ref), SR, metrics=["env_corr"])
    # a silent output is scored at the worst value, so it cannot raise a mean (tests/test_fuzz_evaluate.py)
    assert silent["env_corr"] == -1.0 and "constant envelope" in silent.notes[0]
    quiet_reference = score_pair(torch.zeros_like(ref), ref, SR, metrics=["env_corr"])
    assert math.isnan(quiet_reference["env_corr"]) and "constant envelope" in quiet_reference.notes[0]


def test_silent_mel_rms():
    mel = MelSpectrogram(1024, 100, SR, 256, 1024)
    assert silent_mel_rms(lambda m: torch.zeros(m.shape[-1] * 256), mel, SR) == 0.0
    assert silent_mel_rms(lambda m: torch.full((m.shape[-1] * 256,), 0.25), mel, SR) == pytest.approx(0.25)
    griffin_lim = GriffinLimVocoder(mel, n_iter=4)
    assert silent_mel_rms(lambda m: griffin_lim.vocode_many([m])[0], mel, SR) < 1e-3


def test_evaluate_writes_env_corr_and_silent_rms(tmp_path, capsys):
    ref = tmp_path / "ref" / "a.flac"
    ref.parent.mkdir()
    sf.write(ref, speech().numpy(), SR)
    result = run(output=str(tmp_path / "out"), vocoder="griffin_lim", input=str(ref.parent),
                 metrics=["env_corr"], griffin_lim_iters=8, device="cpu")
    assert result.scores.rows[0]["env_corr"] > 0.9
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["means"]["env_corr"] > 0.9 and 0 <= summary["silent_mel_rms"] < 1e-3
    out = capsys.readouterr().out
    assert "envelope corr. ↑" in out and "output RMS for the mel of 1 s of silence" in out
