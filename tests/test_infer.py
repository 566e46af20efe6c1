"""Inference: `Vocoder` (chunked = unchunked, batched = one by one) and `python -m vocoder.infer`
(wav/flac/mel inputs, bad inputs reported and skipped, outputs kept, NVIDIA checkpoints)."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from child_env import child_env
from model_configs import flat_config, mel_config, model_config

from vocoder import Vocoder
from vocoder.audio import MelSpectrogram
from vocoder.checkpoint import save_checkpoint, save_generator
from vocoder.chunking import chunked_mel, overlap_frames, plan_windows, receptive_field
from vocoder.infer import infer_files, run
from vocoder.infer_paths import InferError, find_inputs, plan_jobs
from vocoder.models import Generator

ROOT = Path(__file__).resolve().parents[1]
TINY, TINY_MEL, TINY_FLAT = model_config("tiny"), mel_config("tiny"), flat_config("tiny")
HOP, SR = 256, 24000
PCM16_STEP = 1 / 32767


def read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    """Samples as written by save_audio: round(y · 32767) (soundfile's float reading divides by 32768)."""
    audio, sr = sf.read(path, dtype="int16")
    return audio / 32767, sr


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_generator(seed: int = 0) -> Generator:
    """The tiny generator with random weights that give audible output (std ≈ 0.15, rarely clipped)."""
    torch.manual_seed(seed)
    model = Generator.from_config({**TINY, "init": "torch"})
    with torch.no_grad():
        model.conv_post.parametrizations.weight.original0.mul_(2)
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_generator(path, tiny_generator(), TINY_MEL)
    return path


def vocoder(checkpoint: Path, **options) -> Vocoder:
    return Vocoder.from_checkpoint(checkpoint, device="cpu", **options)


def mel(frames: int, seed: int = 0, bands: int = 100) -> torch.Tensor:
    return torch.randn(bands, frames, generator=torch.Generator().manual_seed(seed)) - 5


def sine(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wav = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], axis=1)
    return wav[:, 0] if channels == 1 else wav


# ---------------------------------------------------------------- chunking

def test_receptive_field_formula_covers_the_measured_one():
    """R from the config (docstring of vocoder.chunking) ≥ the reach of one output sample's gradient."""
    model = tiny_generator().double().eval()
    assert receptive_field(model) == 6727 and overlap_frames(model) == 27
    frames = 2 * 27 + 5
    x = torch.randn(1, 100, frames, dtype=torch.float64, requires_grad=True)
    y = model(x - 5)[0, 0]
    centre, reach = frames // 2, 0
    for sample in (centre * HOP, centre * HOP + HOP - 1):
        (grad,) = torch.autograd.grad(y[sample], x, retain_graph=True)
        used = (grad[0].abs().sum(0) > 0).nonzero().flatten()
        reach = max(reach, centre - used.min().item(), used.max().item() - centre)
    assert 20 <= reach <= overlap_frames(model)  # measured 24 frames


@pytest.mark.parametrize("frames", [1, 5, 60, 61, 97, 200, 333])
@pytest.mark.parametrize("chunk,overlap", [(8, 3), (16, 27), (40, 0), (1, 1)])
def test_windows_cover_the_mel_with_enough_context(frames, chunk, overlap):
    windows = plan_windows(frames, chunk, overlap)
    assert windows[0].keep_start == 0 and windows[-1].keep_stop == frames
    for a, b in zip(windows, windows[1:]):
        assert a.keep_stop == b.keep_start
    for w in windows:
        assert 0 <= w.start <= w.keep_start < w.keep_stop <= w.stop <= frames
        assert w.keep_stop - w.keep_start <= chunk or len(windows) == 1
        assert w.keep_start - w.start >= overlap or w.start == 0
        assert w.stop - w.keep_stop >= overlap or w.stop == frames
    assert len({w.length for w in windows}) <= 2  # long mels batch: two window lengths


def test_chunked_equals_unchunked(checkpoint):
    voc = vocoder(checkpoint, chunk_frames=24, batch_size=3)  # 200 frames: 9 windows of 51 or 78 frames
    x = mel(200)
    chunked = voc(x)
    voc.chunk_frames = 10_000
    whole = voc(x)
    assert chunked.shape == whole.shape == (200 * HOP,)
    assert whole.std() > 0.05 and (whole.abs() > 0.99).float().mean() < 0.05
    assert (chunked - whole).abs().max().item() <= 1e-4  # measured: 0 (oneDNN on: 2e-7)
    voc.chunk_frames, voc.overlap_frames = 24, 3  # too little context: the seams show
    assert (voc(x) - whole).abs().max().item() > 1e-3


def test_batched_files_equal_one_by_one(checkpoint):
    voc = vocoder(checkpoint, chunk_frames=24, batch_size=4)
    mels = [mel(20, 1), mel(20, 2), mel(37, 3), mel(120, 4), mel(3, 5)]
    together = voc.vocode_many(mels)
    voc.batch_size = 1
    for m, y in zip(mels, together):
        assert y.shape == (m.shape[1] * HOP,)
        assert (y - voc(m)).abs().max().item() <= 1e-5
    assert voc(torch.stack(mels[:2])).shape == (2, 20 * HOP)


def test_chunked_mel_equals_whole_mel():
    spec = MelSpectrogram.from_config(TINY_MEL)
    wav = torch.from_numpy(sine(1.3, SR)).float() + 0.01 * torch.randn(int(1.3 * SR))
    whole = spec(wav)
    for chunk in (7, 50):
        assert torch.allclose(chunked_mel(spec, wav, chunk), whole, atol=1e-5)
    stereo = torch.stack([wav, -wav])
    assert torch.allclose(chunked_mel(spec, stereo, 9), spec(stereo), atol=1e-5)


# ---------------------------------------------------------------- the Vocoder API

def test_vocoder_api(checkpoint, tmp_path):
    voc = vocoder(checkpoint)
    assert (voc.sampling_rate, voc.hop_size, voc.num_mels) == (SR, HOP, 100)
    assert not any(n.endswith("original0") for n, _ in voc.generator.named_parameters())  # weight norm folded
    assert not voc.generator.training
    wav = torch.from_numpy(sine(0.5, 16000)).float()  # 8000 samples → 12000 at 24 kHz → 46 frames
    assert voc.resynthesize(wav, 16000).shape == (46 * HOP,)
    assert voc.resynthesize(torch.stack([wav, wav]), 16000).shape == (2, 46 * HOP)
    with pytest.raises(ValueError, match="expected 100 mel bands, found 80"):
        voc(mel(10, bands=80))
    with pytest.raises(ValueError, match="transposed"):
        voc(mel(10).T.contiguous())
    bad = mel(10)
    bad[3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        voc(bad)
    x = mel(12)
    low = vocoder(checkpoint, precision="bf16")(x)
    assert low.dtype == torch.float32 and (low - voc(x)).abs().max() < 0.1
    with pytest.raises(ValueError, match="precision"):
        vocoder(checkpoint, precision="fp8")
    # a training checkpoint: the model record beside the optimiser state and the run config
    step = tmp_path / "step_7.pt"
    save_checkpoint(step, generator=tiny_generator().state_dict(), step=7, optim_g={},
                    model={"generator": TINY, "mel": TINY_MEL}, run_config={"train": {"batch_size": 4}})
    assert torch.equal(vocoder(step)(x), voc(x))
    with pytest.raises(ValueError, match="model.num_mels=100 but mel.num_mels=80"):
        Vocoder(tiny_generator(), {**TINY_MEL, "num_mels": 80}, device="cpu")


def test_import_vocoder_stays_light():
    code = "import sys, vocoder; assert 'torch' not in sys.modules, 'import vocoder imported torch'"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import vocoder
    assert vocoder.Vocoder is Vocoder


# ---------------------------------------------------------------- the command

def write_inputs(folder: Path) -> None:
    """Three good inputs of 46 mel frames each (one generator call), and every kind of bad one."""
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", sine(0.5, SR), SR)  # 12000 samples → 46 frames
    sf.write(folder / "sub" / "b.flac", sine(0.5, 16000, channels=2), 16000)  # resampled, mixed down
    np.save(folder / "c.npy", mel(46).numpy())
    np.save(folder / "bands.npy", mel(46, bands=80).numpy())
    (folder / "broken.wav").write_bytes(b"RIFF but not really a wav file")
    sf.write(folder / "empty.wav", np.zeros(0), SR)
    nan = sine(0.2, SR)
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(folder / "d.wav", sine(0.5, SR), SR)  # its output exists already


def test_command_line(checkpoint, tmp_path):
    write_inputs(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "d.wav").write_bytes(b"keep me")
    env = child_env(OMP_NUM_THREADS="1")  # no spinning threads on a busy machine
    proc = subprocess.run([sys.executable, "-m", "vocoder.infer", f"checkpoint={checkpoint}", "input=in",
                           "output=out", "device=cpu"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log
    for name, problem in [("bands.npy", "expected 100 mel bands, found 80"), ("broken.wav", "cannot read audio"),
                          ("empty.wav", "contains no audio samples"), ("nan.wav", "NaN or Inf")]:
        assert re.search(rf"FAILED {re.escape(str(Path('in') / name))}: .*{problem}", proc.stderr), log
    assert "skipped in/d.wav: out/d.wav exists" in proc.stdout
    assert "resampled from 16000 Hz to 24000 Hz" in proc.stdout and "mixed 2 channels down to mono" in proc.stdout
    assert ("done: 3 of 8 files, 1.5 s of audio" in proc.stdout and "real-time factor" in proc.stdout
            and "1 resampled, 1 mixed down to mono, 1 skipped (output exists), 4 failed" in proc.stdout), log
    assert (tmp_path / "out" / "d.wav").read_bytes() == b"keep me"
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.wav"))
    assert written == ["a.wav", "c.wav", "d.wav", "sub/b.wav"]
    for name in ("a.wav", "c.wav", "sub/b.wav"):
        info = sf.info(tmp_path / "out" / name)
        assert (info.frames, info.samplerate, info.channels) == (46 * HOP, SR, 1)
    audio, _ = read_pcm16(tmp_path / "out" / "c.wav")
    expected = vocoder(checkpoint)(mel(46)).clamp(-1, 1).numpy()
    assert np.abs(audio - expected).max() <= PCM16_STEP / 2 + 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no Hydra outputs/ or logs


def test_channels_keep_overwrite_and_lists(checkpoint, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "stereo.wav", sine(0.3, SR, channels=2), SR)
    np.save(tmp_path / "in" / "m.npy", mel(10).numpy())
    options = dict(checkpoint=str(checkpoint), output=str(tmp_path / "out"), device="cpu")
    summary = run(input=str(tmp_path / "in"), channels="keep", **options)
    assert summary.done == 2 and not summary.failed
    out = tmp_path / "out" / "stereo.wav"
    assert sf.info(out).channels == 2 and sf.info(out).frames == (int(0.3 * SR) // HOP) * HOP
    first = out.read_bytes()
    summary = run(input=str(tmp_path / "in"), **options)  # exists: skipped, kept
    assert summary.skipped and out.read_bytes() == first and summary.done == 0
    summary = run(input=str(tmp_path / "in"), overwrite=True, **options)  # an earlier output: replaced
    assert summary.done == 2 and sf.info(out).channels == 1
    # a .txt list: relative to the list's folder; a missing entry fails, the others are done
    listing = tmp_path / "in" / "list.txt"
    listing.write_text("m.npy\nmissing.wav\n")
    summary = run(input=str(listing), output=str(tmp_path / "listed"), checkpoint=str(checkpoint), device="cpu")
    assert summary.done == 1 and (tmp_path / "listed" / "m.wav").is_file()
    assert [(p.name, r) for p, r in summary.failed] == [("missing.wav", "audio file not found")]
    assert "1 failed" in capsys.readouterr().out


def test_outputs_never_replace_inputs(checkpoint, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    sf.write(folder / "x.wav", sine(0.2, SR), SR)
    before = (folder / "x.wav").read_bytes()
    with pytest.raises(InferError, match="outputs would replace inputs.*x.wav"):
        run(checkpoint=str(checkpoint), input=str(folder), output=str(folder), overwrite=True, device="cpu")
    with pytest.raises(InferError, match="replace inputs"):
        run(checkpoint=str(checkpoint), input=str(folder / "x.wav"), output=str(folder), device="cpu")
    assert (folder / "x.wav").read_bytes() == before and len(list(folder.iterdir())) == 1
    # the output folder inside the input folder is not searched; two inputs with one output name
    np.save(folder / "x.npy", mel(5).numpy())
    inputs = find_inputs(folder, exclude=(folder / "out",))
    (folder / "out").mkdir()
    sf.write(folder / "out" / "old.wav", sine(0.2, SR), SR)
    again = find_inputs(folder, exclude=(folder / "out",))
    assert again.files == inputs.files and (inputs.excluded, again.excluded) == (0, 1)
    jobs = plan_jobs(inputs, folder / "out")
    assert [j.error is None for j in jobs] == [True, False] and "also the output of" in jobs[1].error
    summary = infer_files(vocoder(checkpoint), jobs, out=io.StringIO(), err=io.StringIO())
    assert summary.done == 1 and len(summary.failed) == 1


def test_nvidia_checkpoint_end_to_end(tmp_path):
    bigvgan = pytest.importorskip("bigvgan.bigvgan")
    env = pytest.importorskip("bigvgan.env")
    torch.manual_seed(1)
    theirs = bigvgan.BigVGAN(env.AttrDict(dict(TINY_FLAT)), use_cuda_kernel=False).eval()
    with torch.no_grad():
        theirs.conv_post.weight_g.mul_(10)  # audible output
    folder = tmp_path / "bigvgan_tiny"
    folder.mkdir()
    torch.save({"generator": theirs.state_dict()}, folder / "bigvgan_generator.pt")
    (folder / "config.json").write_text(json.dumps(TINY_FLAT))
    x = mel(30)
    with torch.no_grad():
        theirs.remove_weight_norm()
        expected = theirs(x[None])[0, 0]
    assert expected.std() > 0.05
    for path in (folder, folder / "bigvgan_generator.pt"):
        assert (vocoder(path)(x) - expected).abs().max().item() <= 1e-4
    (tmp_path / "mels").mkdir()
    torch.save({"mel": x}, tmp_path / "mels" / "utt.pt")
    summary = run(checkpoint=str(folder), input=str(tmp_path / "mels"), output=str(tmp_path / "wavs"), device="cpu")
    assert summary.done == 1 and not summary.failed
    audio, sr = read_pcm16(tmp_path / "wavs" / "utt.wav")
    assert sr == SR and np.abs(audio - expected.clamp(-1, 1).numpy()).max() <= PCM16_STEP / 2 + 1e-4
