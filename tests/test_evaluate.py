"""Evaluation: each metric against a known answer or its reference package (pesq, auraloss), the
pair function (rates, lengths, undefined metrics), and `python -m vocoder.evaluate` end to end."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
import yaml
from pesq import pesq

from vocoder.audio import GriffinLimVocoder, MelSpectrogram, griffin_lim
from vocoder.checkpoint import save_generator
from vocoder.evaluate import EvaluateError, run
from vocoder.evaluation import (METRICS, mel_cepstral_distortion, mel_cepstrum, mel_l1,
                                multi_resolution_stft_distance, periodicity_metrics, pesq_wb, pitch_and_periodicity,
                                score_pair)
from vocoder.evaluation.cepstral import MCD_BANDS
from vocoder.models import Generator

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "vocoder" / "data" / "demo"
SR = 24000
MEL = MelSpectrogram(1024, 100, SR, 256, 1024)


@pytest.fixture(autouse=True)
def _no_onednn():
    """Keep oneDNN on here (conftest turns it off): CREPE's convolutions run ~3x faster with it."""
    yield


def speech(name: str = "awb_048.flac", start: float = 0.4, seconds: float = 1.0) -> torch.Tensor:
    """`seconds` of a demo clip from `start` (24 kHz)."""
    wav, sr = sf.read(DEMO / name, dtype="float32")
    assert sr == SR
    return torch.from_numpy(wav[int(start * sr):int((start + seconds) * sr)].copy())


def with_noise(wav: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(wav.shape, generator=torch.Generator().manual_seed(seed))
    noise *= wav.norm() / noise.norm() / 10 ** (snr_db / 20)
    return wav + noise


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return speech()


# ---------------------------------------------------------------- the metrics

def test_identical_audio_scores_perfect(clip):
    scores = score_pair(clip, clip.clone(), SR)
    assert list(scores) == list(METRICS) and scores.notes == []
    assert scores["pesq"] == pytest.approx(4.644, abs=0.005)  # the top of the P.862.2 scale
    assert scores["periodicity"] == 0 and scores["vuv_f1"] == 1
    assert scores["m_stft"] == 0 and scores["mcd"] == 0 and scores["mel_l1"] == 0
    assert scores["env_corr"] == pytest.approx(1.0)


def test_pesq_of_a_degraded_copy_is_the_pesq_package_on_16khz_audio(clip):
    noisy = with_noise(clip, snr_db=10)
    expected = pesq(16000, AF.resample(clip, SR, 16000).numpy(), AF.resample(noisy, SR, 16000).numpy(), "wb")
    assert pesq_wb(clip, noisy, SR) == pytest.approx(expected, abs=1e-6)
    assert 1.0 < expected < 3.0  # 10 dB of white noise is clearly audible
    clean16, noisy16 = AF.resample(clip, SR, 16000), AF.resample(noisy, SR, 16000)
    assert pesq_wb(clean16, noisy16, 16000) == pytest.approx(pesq(16000, clean16.numpy(), noisy16.numpy(), "wb"),
                                                             abs=1e-6)
    assert pesq_wb(clip, with_noise(clip, snr_db=30), SR) > expected + 0.5  # less noise, better score


def test_m_stft_is_auraloss_multi_resolution_stft_loss(clip):
    auraloss = pytest.importorskip("auraloss")  # in the test extra: NVIDIA's validation uses it
    reference = auraloss.freq.MultiResolutionSTFTLoss()
    for generated in (with_noise(clip, 10), 0.5 * clip, torch.roll(clip, 37)):
        expected = reference(generated[None, None], clip[None, None]).item()
        assert multi_resolution_stft_distance(clip, generated) == pytest.approx(expected, rel=1e-5)
        assert expected > 0.05


def test_mel_cepstrum_convention_and_mcd_known_answers():
    """c_d inverts as ln M(m) = c_0 + 2·Σ c_d cos(π d (m + ½)/K) (the convention of the dB constant);
    a gain changes only c_0, so MCD (c_1 … c_24) is 0 for it, and grows with added noise."""
    noise = 0.1 * torch.randn(SR, generator=torch.Generator().manual_seed(1))
    c = mel_cepstrum(noise, SR)
    m = torch.arange(MCD_BANDS, dtype=torch.float64) + 0.5
    basis = torch.cos(math.pi * torch.arange(MCD_BANDS, dtype=torch.float64)[:, None] * m / MCD_BANDS)
    rebuilt = c[:, :1] + 2 * c[:, 1:] @ basis[1:]
    log_mel = torch.log(torch.clamp(mel_filter(SR) @ stft_of(noise), min=1e-5)).T
    torch.testing.assert_close(rebuilt, log_mel, atol=1e-9, rtol=0)
    assert mel_cepstral_distortion(noise, 0.5 * noise, SR) < 1e-6  # dB; the 1e-9 inside |STFT| aside
    clip = speech()
    assert 0 < mel_cepstral_distortion(clip, with_noise(clip, 30), SR) < mel_cepstral_distortion(
        clip, with_noise(clip, 10), SR)


def mel_filter(sr: int) -> torch.Tensor:
    from vocoder.audio import mel_filterbank
    return mel_filterbank(sr, 1024, MCD_BANDS).double()


def stft_of(wav: torch.Tensor) -> torch.Tensor:
    from vocoder.audio import stft_magnitude
    return stft_magnitude(wav.double()[None], 1024, 256, 1024, torch.hann_window(1024, dtype=torch.float64))[0]


def test_periodicity_of_a_voiced_sound_noise_and_silence():
    """A 150 Hz sawtooth is voiced throughout (pitch 150 Hz); white noise is not; silence is silent."""
    t = torch.arange(SR // 2) / SR
    saw = 0.3 * (2 * ((150 * t) % 1) - 1)
    noise = 0.3 * torch.randn(SR // 2, generator=torch.Generator().manual_seed(0))
    pitch, periodicity = pitch_and_periodicity(AF.resample(saw, SR, 16000))
    assert len(pitch) == 1 + (8000 - 1024) // 160 and not pitch.isnan().any()
    assert pitch.median().item() == pytest.approx(150, rel=0.02) and periodicity.min() > 0.5
    assert periodicity_metrics(saw, saw, SR) == {"periodicity": 0.0, "vuv_f1": 1.0}
    versus_noise = periodicity_metrics(saw, noise, SR)
    assert versus_noise["vuv_f1"] < 0.1 and versus_noise["periodicity"] > 0.6
    silence = torch.zeros(SR // 2)  # every frame silent: periodicity 0, nothing voiced
    assert periodicity_metrics(silence, silence, SR) == {"periodicity": 0.0, "vuv_f1": 1.0}
    versus_silence = periodicity_metrics(saw, silence, SR)
    assert versus_silence["vuv_f1"] == 0.0
    assert versus_silence["periodicity"] == pytest.approx(periodicity.square().mean().sqrt().item(), rel=1e-3)


def test_mel_l1_is_the_package_mel(clip):
    noisy = with_noise(clip, 20)
    assert mel_l1(clip, noisy, MEL) == pytest.approx((MEL(clip) - MEL(noisy)).abs().mean().item(), rel=1e-6)


# ---------------------------------------------------------------- the pair: rates, lengths, undefined values

def test_other_rate_and_length_are_resampled_trimmed_and_reported(clip):
    generated_16k = AF.resample(torch.cat([clip, torch.zeros(SR // 10)]), SR, 16000)  # 0.1 s longer, at 16 kHz
    scores = score_pair(clip, generated_16k, SR, generated_rate=16000, metrics=["pesq", "mel_l1"])
    assert list(scores) == ["pesq", "mel_l1"]
    assert scores.notes[0] == "generated audio resampled from 16000 Hz to 24000 Hz"
    assert scores.notes[1].startswith("lengths differ by 2400 samples (0.100 s): the generated audio is trimmed")
    assert scores["pesq"] > 4.3 and scores["mel_l1"] < 0.3  # the same speech, without the bands above 8 kHz
    shorter = score_pair(clip, clip[:-600], SR, metrics=["mel_l1"])  # under 3 hops: normal for a vocoder
    assert shorter.notes == [] and shorter["mel_l1"] == 0


def test_undefined_metrics_are_nan_with_a_reason():
    short = speech(seconds=0.1)
    scores = score_pair(short, short, SR, metrics=["pesq", "mel_l1"])
    assert math.isnan(scores["pesq"]) and "needs at least 0.25 s" in scores.notes[0]
    assert scores["mel_l1"] == 0
    with pytest.raises(ValueError, match="unknown metric.*'stoi'"):
        score_pair(short, short, SR, metrics=["stoi"])
    with pytest.raises(ValueError, match="mel is for 22050 Hz"):
        score_pair(short, short, SR, mel=MelSpectrogram(1024, 80, 22050, 256, 1024))


def test_griffin_lim_lines_up_with_the_audio_its_mel_came_from(clip):
    mel = MEL(clip)
    wav = griffin_lim(mel, MEL, n_iter=16)
    assert wav.shape == (mel.shape[-1] * 256,)
    assert pesq_wb(clip[:len(wav)], wav, SR) > 2.5  # 16 iterations; 64 give ~3.4 on the demo clips
    aligned = mel_l1(clip[:len(wav)], wav, MEL)  # phase aside, the spectra line up best without a shift
    assert aligned < 0.3
    for shift in (64, 128):
        assert aligned < mel_l1(clip[:len(wav) - shift], wav[shift:], MEL)
        assert aligned < mel_l1(clip[shift:len(wav)], wav[:-shift], MEL)
    assert torch.equal(wav, griffin_lim(mel, MEL, n_iter=16))  # fixed seed: reproducible


# ---------------------------------------------------------------- python -m vocoder.evaluate

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """ref/: four 1 s clips of the demo corpus (one in a sub-folder, one as .wav); gen/: the first as
    it is, the second with noise at 10 dB SNR, the third missing, the fourth unreadable, and one
    more file that has no reference."""
    root = tmp_path_factory.mktemp("corpus")
    clips = {"awb_048.flac": speech("awb_048.flac"), "spk/kal_007.flac": speech("kal_007.flac"),
             "slt_027.wav": speech("slt_027.flac")}
    for name, wav in clips.items():
        (root / "ref" / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / "ref" / name, wav.numpy(), SR, subtype="FLOAT" if name.endswith(".wav") else "PCM_16")
    (root / "gen" / "spk").mkdir(parents=True)
    sf.write(root / "gen" / "awb_048.wav", sf.read(root / "ref" / "awb_048.flac", dtype="float32")[0], SR,
             subtype="FLOAT")
    sf.write(root / "gen" / "spk" / "kal_007.wav", with_noise(clips["spk/kal_007.flac"], 10).numpy(), SR,
             subtype="FLOAT")
    sf.write(root / "ref" / "extra.flac", speech("rms_038.flac").numpy(), SR)
    (root / "gen" / "extra.wav").write_bytes(b"not a wav file")
    sf.write(root / "gen" / "orphan.wav", speech("rms_038.flac").numpy(), SR)
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vocoder.evaluate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_cli_scores_pairs_and_reports_missing_and_unreadable_ones(corpus, tmp_path):
    out = tmp_path / "eval"
    result = run_cli(f"reference={corpus / 'ref'}", f"generated={corpus / 'gen'}", f"output={out}")
    assert result.returncode == 1, result.stderr[-3000:]  # a pair failed; the others were scored
    assert "Traceback" not in result.stderr
    assert "FAILED slt_027.wav: missing: no generated file slt_027.*" in result.stderr
    assert "FAILED extra.flac: " in result.stderr and "extra.wav: cannot read audio" in result.stderr
    assert "FAILED orphan.wav: missing: no reference file orphan.*" in result.stderr
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["file"] for r in rows] == ["awb_048.flac", "spk/kal_007.flac"]
    assert list(rows[0]) == ["file", *METRICS]
    identical, noisy = ({k: float(v) for k, v in r.items() if k != "file"} for r in rows)
    assert identical["pesq"] == pytest.approx(4.644, abs=0.005) and identical["vuv_f1"] == 1
    assert identical["m_stft"] == identical["mcd"] == identical["periodicity"] == identical["mel_l1"] == 0
    ref, deg = speech("kal_007.flac"), with_noise(speech("kal_007.flac"), 10)
    assert noisy["pesq"] == pytest.approx(pesq_wb(ref, deg, SR), abs=2e-5)  # csv keeps 6 significant digits
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 2 and summary["system"] == "gen" and summary["sampling_rate"] == SR
    for metric in METRICS:
        assert summary["means"][metric] == pytest.approx((identical[metric] + noisy[metric]) / 2, rel=1e-4)
    assert set(summary["failed"]) == {"slt_027.wav", "extra.flac", "orphan.wav"}
    assert "| system | files | PESQ-wb ↑ | M-STFT ↓ | MCD (dB) ↓ | periodicity ↓ | V/UV F1 ↑ | mel L1 ↓ |" \
        in result.stdout
    assert f"| gen | 2 | {summary['means']['pesq']:.3f} |" in result.stdout
    assert "[5/5]" in result.stdout + result.stderr  # progress


def test_bad_arguments_are_refused_before_anything_is_done(corpus, tmp_path):
    ref, gen = str(corpus / "ref"), str(corpus / "gen")
    for options, message in (
            ({"reference": ref}, "set both reference= and generated="),
            ({"input": ref}, "input= needs checkpoint=CKPT"),
            ({"reference": ref, "generated": gen, "checkpoint": "x.pt"}, "take no input=, checkpoint="),
            ({"reference": str(tmp_path / "nowhere"), "generated": gen}, f"reference={tmp_path / 'nowhere'}: does not exist"),
            ({"reference": ref, "generated": gen, "metrics": ["pesq", "stoi"]}, "unknown metric(s) 'stoi'"),
            ({"input": ref, "vocoder": "world"}, "vocoder must be one of model, griffin_lim"),
            ({"reference": ref, "generated": gen, "pitch_model": "large"}, "pitch_model must be one of tiny, full"),
            ({"reference": ref, "generated": gen, "overwrite": "maybe"},
             "overwrite must be true or false (or yes/no, on/off, 1/0), got 'maybe'"),
            ({"reference": ref, "generated": str(corpus / "ref" / "awb_048.flac")}, None)):
        if message is None:  # output is a file
            with pytest.raises(EvaluateError, match="is a file; output must be a folder"):
                run(output=str(corpus / "ref" / "awb_048.flac"), **options)
            continue
        with pytest.raises(EvaluateError) as error:
            run(output=str(tmp_path / "out"), **options)
        assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_cli_error_is_one_line_and_exit_2(corpus):
    result = run_cli(f"reference={corpus / 'ref'}", "output=x")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocoder.evaluate: error: set both reference= and generated="), lines


def test_griffin_lim_and_checkpoint_resynthesis_then_score(corpus, tmp_path):
    ref = corpus / "ref" / "spk"  # one clip
    result = run(output=str(tmp_path / "gl"), vocoder="griffin_lim", input=str(ref), metrics=["pesq", "mel_l1"],
                 griffin_lim_iters=16, device="cpu")
    assert result.system == "griffin_lim" and result.scores.names == ["kal_007.flac"]
    assert (tmp_path / "gl" / "generated" / "kal_007.wav").is_file()
    assert result.scores.rows[0]["pesq"] > 2.5 and result.scores.rows[0]["mel_l1"] < 0.5

    tiny = yaml.safe_load((ROOT / "vocoder" / "configs" / "model" / "tiny.yaml").read_text())
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    mel = yaml.safe_load((ROOT / "vocoder" / "configs" / "mel" / "24khz_100band.yaml").read_text())
    save_generator(ckpt, Generator.from_config({**tiny, "init": "torch"}), mel)
    result = run(output=str(tmp_path / "model"), checkpoint=str(ckpt), input=str(ref), metrics=["pesq", "mel_l1"],
                 device="cpu")
    assert result.system == "tiny" and (tmp_path / "model" / "generated" / "kal_007.wav").is_file()
    assert result.scores.rows[0]["pesq"] < 2.0  # an untrained generator

    with pytest.raises(EvaluateError, match="metrics.csv exists"):  # an earlier run is kept...
        run(output=str(tmp_path / "model"), checkpoint=str(ckpt), input=str(ref), metrics=["mel_l1"], device="cpu")
    generated = tmp_path / "model" / "generated" / "kal_007.wav"
    before = generated.read_bytes()
    with pytest.raises(EvaluateError, match="would replace inputs"):  # ...and an input is never replaced
        run(output=str(tmp_path / "model"), checkpoint=str(ckpt), input=str(generated), metrics=["mel_l1"],
            device="cpu", overwrite=True)
    assert generated.read_bytes() == before


def test_griffin_lim_vocoder_has_the_interface_infer_uses():
    voc = GriffinLimVocoder(MEL, n_iter=4)
    mel = voc.mel_spectrogram(speech(seconds=0.3))
    assert voc.sampling_rate == SR and voc.num_mels == 100 and mel.shape[0] == 100
    assert voc.vocode_many([mel])[0].shape == (mel.shape[-1] * 256,)


def test_griffin_lim_with_a_checkpoint_takes_the_checkpoints_mel(tmp_path):
    """`vocoder=griffin_lim checkpoint=CKPT`: the mel settings recorded in the checkpoint (not its
    generator arguments) drive Griffin-Lim and the scoring."""
    import sys
    sys.path.insert(0, str(ROOT / "tests"))
    from model_configs import save_tiny_generator

    ckpt = save_tiny_generator(tmp_path / "tiny.pt")
    result = run(output=str(tmp_path / "gl"), vocoder="griffin_lim", checkpoint=str(ckpt),
                 input=str(ROOT / "vocoder" / "data" / "demo" / "kal_007.flac"), metrics=["mel_l1"],
                 griffin_lim_iters=4, device="cpu")
    assert result.system == "griffin_lim" and result.scores.rows[0]["mel_l1"] < 0.5
    summary = json.loads((tmp_path / "gl" / "summary.json").read_text())
    assert summary["mel"]["hop_size"] == 256 and summary["mel"]["num_mels"] == 100
