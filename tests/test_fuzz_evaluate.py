"""Fuzzing `vocoder.evaluate` with unscorable files: a silent (or far too short) generated file is scored at
each bounded metric's worst value, so it can never raise a mean; a pair a metric is undefined for
through its reference is left out of that mean, and the table and summary say over how many files and
which."""

import csv
import json
import math
from pathlib import Path

import pytest
import soundfile as sf
import torch

from vocoder.evaluate import run
from vocoder.evaluation import WORST, pesq_wb, score_pair

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "vocoder" / "data" / "demo"
SR = 24000
CHOSEN = ["pesq", "mel_l1", "env_corr"]

pytestmark = pytest.mark.usefixtures("one_thread")


def speech(name: str, seconds: float = 1.0) -> torch.Tensor:
    wav, sr = sf.read(DEMO / name, dtype="float32")
    assert sr == SR
    return torch.from_numpy(wav[int(0.4 * sr):int((0.4 + seconds) * sr)].copy())


def noisy(wav: torch.Tensor, snr_db: float) -> torch.Tensor:
    noise = torch.randn(wav.shape, generator=torch.Generator().manual_seed(0))
    return wav + noise * wav.norm() / noise.norm() / 10 ** (snr_db / 20)


def test_a_silent_or_truncated_output_is_scored_at_the_worst_value():
    ref = speech("awb_048.flac")
    silent = score_pair(ref, torch.zeros_like(ref), SR, metrics=CHOSEN)
    assert silent["pesq"] == WORST["pesq"] == 1.0 and silent["env_corr"] == WORST["env_corr"]
    assert silent.worst == {"pesq", "env_corr"} and math.isfinite(silent["mel_l1"])
    assert any("the generated audio is silent" in n and "scored at the worst value (pesq 1)" in n
               for n in silent.notes), silent.notes
    short = score_pair(ref, ref[:2400], SR, metrics=["pesq"])  # 0.1 s of output for 1 s of speech
    assert short["pesq"] == 1.0 and short.worst == {"pesq"}
    quiet_reference = score_pair(torch.zeros_like(ref), ref, SR, metrics=CHOSEN)  # the reference's doing: left out
    assert math.isnan(quiet_reference["pesq"]) and math.isnan(quiet_reference["env_corr"])
    assert quiet_reference.worst == frozenset()


def test_means_count_unscorable_files_and_say_which(tmp_path, capsys):
    refs, gens = tmp_path / "ref", tmp_path / "gen"
    refs.mkdir(), gens.mkdir()
    clips = {"a": speech("awb_048.flac"), "b": speech("awb_041.flac"), "c": speech("awb_042.flac")}
    outputs = {"a": noisy(clips["a"], 10), "b": noisy(clips["b"], 20), "c": torch.zeros_like(clips["c"])}
    clips["d"], outputs["d"] = torch.zeros(SR), speech("awb_043.flac")  # a silent reference
    for key in clips:
        sf.write(refs / f"{key}.wav", clips[key].numpy(), SR, subtype="FLOAT")
        sf.write(gens / f"{key}.wav", outputs[key].numpy(), SR, subtype="FLOAT")
    capsys.readouterr()
    result = run(output=str(tmp_path / "eval"), reference=str(refs), generated=str(gens), metrics=CHOSEN)
    out = capsys.readouterr().out
    rows = {r["file"]: r for r in csv.DictReader((tmp_path / "eval" / "metrics.csv").open())}
    assert float(rows["c.wav"]["pesq"]) == 1.0 and rows["d.wav"]["pesq"] == "nan"
    expected = (pesq_wb(clips["a"], outputs["a"], SR) + pesq_wb(clips["b"], outputs["b"], SR) + 1.0) / 3
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["count"] == 4 and summary["means"]["pesq"] == pytest.approx(expected, abs=1e-5)
    assert summary["counted"] == {"pesq": 3, "mel_l1": 4, "env_corr": 3}
    assert summary["undefined"] == {"pesq": ["d.wav"], "env_corr": ["d.wav"]}
    assert summary["scored_at_worst"] == {"pesq": ["c.wav"], "env_corr": ["c.wav"]}
    assert f"| gen | 4 | {expected:.3f} (3 of 4) | {summary['means']['mel_l1']:.3f} |" in result.table
    assert "PESQ-wb: 1 of 4 files scored at the worst value 1 (the generated audio has no score" in out
    assert "PESQ-wb: mean over 3 of 4 files; left out (undefined for the pair): d.wav" in out
    assert "envelope corr.: 1 of 4 files scored at the worst value -1" in out


@pytest.mark.parametrize("reference_has_speech", [True, False])
def test_no_utterances_is_blamed_on_the_file_pesq_finds_no_speech_in(monkeypatch, reference_has_speech):
    """PESQ's NoUtterancesError is told apart by scoring the reference against itself: speech there
    puts the fault on the generated file (worst value), none leaves the pair out."""
    import numpy as np
    import pesq as pesq_module

    real = pesq_module.pesq

    def fake(rate, ref, deg, mode):
        if np.array_equal(ref, deg) and reference_has_speech:
            return real(rate, ref, deg, mode)
        raise pesq_module.NoUtterancesError("no utterances")

    monkeypatch.setattr(pesq_module, "pesq", fake)
    clip = speech("awb_000.flac")
    with pytest.raises(Exception) as caught:
        pesq_wb(clip, 0.5 * clip, SR)
    assert type(caught.value).__name__ == "UndefinedMetric"
    assert caught.value.generated_at_fault is reference_has_speech
    assert ("generated audio" if reference_has_speech else "reference") in str(caught.value)
