"""The generator's harmonic pitch source (model.pitch_source): the sines sit at the F0, the pitch
classes round-trip, the inference noise depends only on the sample index, chunked and streaming
inference equal one pass (they carry the source's phase), training steps need and learn F0 targets."""

import math

import pytest
import torch

from model_configs import mel_config, model_config

from vocoder import Vocoder
from vocoder.chunking import overlap_frames, receptive_field
from vocoder.bench.train import load_config
from vocoder.models import Generator, build_discriminators
from vocoder.models.generator import check_mel_settings
from vocoder.models.pitch import PitchPredictor
from vocoder.models.source import HarmonicSource, index_noise, pitch_source_settings, source_downsampler
from vocoder.models.losses import MultiScaleMelSpectrogramLoss
from vocoder.audio import MelSpectrogram
from vocoder.training.step import GanStep

RATE, HOP = 24000, 256
MEL = mel_config("tiny")
# tiny with one narrow AMP block per stage, plus the source: a few ms per window
SMALL = {**model_config("tiny"), "upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
         "resblock_dilation_sizes": [[1, 3]], "init": "torch"}
SOURCE = {"sampling_rate": RATE, "predictor_channels": 16}

pytestmark = pytest.mark.usefixtures("one_thread")


def source_generator(seed: int = 0, **source) -> Generator:
    """A small generator with a pitch source whose excitation dominates the output and whose
    predictor calls every frame voiced (so the sines, and their phase, decide the audio)."""
    torch.manual_seed(seed)
    generator = Generator.from_config({**SMALL, "pitch_source": {**SOURCE, **source}}, impl="eager")
    with torch.no_grad():
        generator.conditioning.predictor.net[-1].bias[-1] = 5.0  # voiced
        for conv in generator.conditioning.downs:
            conv.weight.mul_(30)
        generator.conv_post.parametrizations.weight.original0.mul_(4)
    return generator


def mel(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(100, frames, generator=torch.Generator().manual_seed(seed)) - 5


# ---------------------------------------------------------------- the source and the predictor


def test_the_fundamental_sits_at_the_f0_and_harmonics_above_nyquist_are_silent():
    source = HarmonicSource(RATE, HOP, harmonics=4).eval()
    with torch.no_grad():
        source.merge.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        source.merge.bias.zero_()
    frames = 94  # ~1 s
    with torch.no_grad():
        out = source(torch.full((1, frames), 200.0), torch.ones(1, frames))[0, 0]
    assert out.shape == (frames * HOP,)
    spectrum = torch.fft.rfft(out.double()).abs()
    peak_hz = float(spectrum.argmax()) * RATE / out.numel()
    assert abs(peak_hz - 200.0) < 2.0
    assert abs(float(out.std()) - 0.1 / math.sqrt(2)) < 0.002  # sine amplitude 0.1 (tanh barely bends it)
    with torch.no_grad():  # harmonic 3 of 5 kHz is above 12 kHz: muted, so only noise is left
        source.merge.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
        high = source(torch.full((1, frames), 5000.0), torch.ones(1, frames))[0, 0]
    assert float(high.std()) < 0.004  # the voiced noise (0.003) alone


def test_unvoiced_frames_give_noise_and_inference_noise_is_fixed_while_training_noise_is_fresh():
    source = HarmonicSource(RATE, HOP, harmonics=2)
    f0, unvoiced = torch.full((1, 40), 150.0), torch.zeros(1, 40)
    source.eval().requires_grad_(False)
    a, b = source(f0, unvoiced), source(f0, unvoiced)
    assert torch.equal(a, b) and float(a.std()) > 1e-3
    source.train()
    assert not torch.equal(source(f0, unvoiced), source(f0, unvoiced))


def test_index_noise_is_standard_normal_and_a_function_of_the_index_alone():
    x = index_noise(torch.arange(200_000))
    assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01
    assert abs(float(torch.corrcoef(torch.stack([x[:-1], x[1:]]))[0, 1])) < 0.01
    assert torch.equal(index_noise(torch.arange(5000, 6000)), x[5000:6000])
    assert torch.isfinite(index_noise(torch.tensor([0, 2**32 - 1, 2**40 + 3]))).all()


def test_a_window_placed_by_phase_and_first_sample_continues_the_whole_signal():
    source = HarmonicSource(RATE, HOP).eval().requires_grad_(False)
    f0 = torch.full((1, 30), 173.0)  # constant: the window's steps equal the signal's everywhere
    voiced = torch.cat([torch.ones(1, 20), torch.zeros(1, 10)], 1)
    whole = source(f0, voiced)
    start = 12
    phase = (source.sample_steps(f0)[0, :start * HOP].sum() % 1.0)[None]
    part = source(f0[:, start:], voiced[:, start:], phase, torch.tensor([start * HOP]))
    assert torch.allclose(part, whole[..., start * HOP:], atol=1e-5)
    unplaced = source(f0[:, start:], voiced[:, start:])
    assert (unplaced - whole[..., start * HOP:]).abs().max() > 0.01  # the placement is what makes it equal


def test_downsampled_source_has_each_stage_length():
    for stride in (1, 3, 4, 16, 64):
        assert source_downsampler(5, stride)(torch.zeros(2, 1, 64 * 3 * 8)).shape == (2, 5, 64 * 3 * 8 // stride)


def test_pitch_classes_round_trip_within_half_a_class_and_decode_picks_the_likely_one():
    predictor = PitchPredictor(100, channels=8)
    f0 = torch.tensor([50.0, 81.3, 200.0, 333.3, 600.0])
    back = predictor.f0_of(predictor.bin_of(f0).double())
    half = 2 ** (predictor._log_step / 2)
    assert torch.all(back / f0 <= half + 1e-6) and torch.all(f0 / back <= half + 1e-6)
    assert predictor.bin_of(torch.tensor([10.0, 5000.0])).tolist() == [0, predictor.bins - 1]
    logits = torch.full((1, predictor.bins + 1, 2), -20.0)
    logits[0, 40, 0] = logits[0, 70, 1] = 20.0
    logits[0, predictor.bins] = torch.tensor([3.0, -3.0])
    decoded, voiced = predictor.decode(logits)
    assert torch.allclose(decoded[0], predictor.f0_of(torch.tensor([40.0, 70.0])), rtol=1e-4)
    assert voiced.tolist() == [[1.0, 0.0]]


def test_pitch_loss_counts_classes_only_where_voiced():
    predictor = PitchPredictor(100, channels=8)
    f0, voiced = torch.tensor([[120.0, 300.0]]), torch.tensor([[1.0, 0.0]])
    right = torch.full((1, predictor.bins + 1, 2), -10.0)
    right[0, predictor.bin_of(f0)[0], torch.arange(2)] = 10.0
    right[0, predictor.bins] = torch.tensor([10.0, -10.0])
    wrong_unvoiced_class = right.clone()
    wrong_unvoiced_class[0, :predictor.bins, 1] = wrong_unvoiced_class[0, :predictor.bins, 1].flip(0)
    wrong_voiced_class = right.clone()
    wrong_voiced_class[0, :predictor.bins, 0] = wrong_voiced_class[0, :predictor.bins, 0].flip(0)
    assert float(predictor.loss(right, f0, voiced)) < 1e-3
    assert float(predictor.loss(wrong_unvoiced_class, f0, voiced)) < 1e-3
    assert float(predictor.loss(wrong_voiced_class, f0, voiced)) > 10


# ---------------------------------------------------------------- the generator with a source


def test_the_config_records_every_source_setting_and_plain_configs_stay_as_they_were():
    generator = source_generator()
    assert generator.config["pitch_source"] == pitch_source_settings(SOURCE)
    assert Generator.from_config(generator.config).config == generator.config
    assert "pitch_source" not in Generator.from_config(SMALL).config
    assert "pitch_source" not in Generator.settings(model_config("bigvgan_v2_24khz_100band_256x"))
    with pytest.raises(ValueError, match="pitch_source.sampling_rate"):
        Generator.from_config({**SMALL, "pitch_source": {"harmonics": 4}})
    with pytest.raises(ValueError, match="not pitch_source settings: octaves"):
        Generator.from_config({**SMALL, "pitch_source": {**SOURCE, "octaves": 2}})
    with pytest.raises(ValueError, match="mel.sampling_rate=22050"):
        check_mel_settings(generator.config, {**MEL, "sampling_rate": 22050})


def test_forward_predicts_the_f0_or_takes_one_of_the_right_shape():
    generator = source_generator().eval()
    x = mel(20)[None]
    with torch.no_grad():
        f0, voiced = generator.conditioning.predictor.predict(x)
        assert torch.equal(generator(x), generator(x, {"f0": f0, "voiced": voiced}))
        other = generator(x, {"f0": f0 * 1.5, "voiced": voiced})
    assert (other - generator(x)).abs().max() > 1e-3  # the F0 drives the audio
    with pytest.raises(ValueError, match=r"f0 and voiced must both be \(batch, frames\) = \(1, 20\)"):
        generator(x, {"f0": f0[:, :5], "voiced": voiced[:, :5]})
    with pytest.raises(ValueError, match="has no pitch source"):
        Generator.from_config(SMALL)(x, {"f0": f0, "voiced": voiced})


def test_the_receptive_field_adds_the_predictors_reach_and_a_frame():
    plain, with_source = Generator.from_config(SMALL), source_generator()
    predictor = with_source.conditioning.predictor
    assert receptive_field(with_source) - receptive_field(plain) == HOP * (predictor.reach() + 1)
    assert predictor.reach() == 4
    assert overlap_frames(with_source) == overlap_frames(plain) + 5


@pytest.fixture(scope="module")
def one_pass() -> Vocoder:
    return Vocoder(source_generator(), MEL, device="cpu", chunk_frames=100_000)


@pytest.fixture(scope="module")
def chunked() -> Vocoder:
    return Vocoder(source_generator(), MEL, device="cpu", chunk_frames=7, batch_size=3)


def test_chunked_inference_equals_one_pass(one_pass, chunked):
    mels = [mel(131, seed=1), mel(40, seed=2), mel(9, seed=3)]
    expected = [one_pass(m) for m in mels]
    assert float(expected[0].std()) > 0.05
    for got, want in zip(chunked.vocode_many(mels), expected):
        assert torch.allclose(got, want, atol=2e-5, rtol=0)
    # what the phase carry is for: the same windows, each source started at phase 0, differ
    x = mel(131, seed=1)
    f0, voiced = chunked.pitch(x)
    with torch.no_grad():
        late = chunked.generator(x[None, :, 60:], {"f0": f0[None, 60:], "voiced": voiced[None, 60:]})[0, 0]
    assert (late[40 * HOP:] - expected[0][100 * HOP:]).abs().max() > 0.05


@pytest.mark.parametrize("chunk, piece", [(7, 5), (1, 1), (131, 40), (13, 3)])
def test_streaming_equals_one_pass(one_pass, chunked, chunk, piece):
    x = mel(131, seed=1)
    expected = one_pass(x)
    pieces = list(chunked.stream(list(x.split(chunk, dim=-1)), piece_frames=piece))
    assert all(p.numel() == piece * HOP for p in pieces[:-1])
    assert torch.allclose(torch.cat(pieces), expected, atol=2e-5, rtol=0)


def test_vocoder_pitch_needs_a_source():
    plain = Vocoder(Generator.from_config(SMALL), MEL, device="cpu")
    assert not plain.has_pitch_source
    with pytest.raises(ValueError, match="no pitch source"):
        plain.pitch(mel(10))


# ---------------------------------------------------------------- training


def gan_step(generator: Generator) -> GanStep:
    discriminators = build_discriminators(load_config("discriminator", "tiny"), RATE)
    return GanStep(generator, discriminators, MelSpectrogram.from_config(MEL), MultiScaleMelSpectrogramLoss(RATE),
                   learning_rate=1e-3)


def test_a_step_needs_f0_targets_and_teaches_the_predictor():
    generator = source_generator().train()
    step = gan_step(generator)
    wav = torch.randn(2, 1, 8 * HOP) * 0.1
    with pytest.raises(ValueError, match="needs the batch's F0 targets"):
        step(wav, adversarial=False)
    f0, voiced = torch.full((2, 8), 180.0), torch.ones(2, 8)
    before = [p.detach().clone() for p in generator.conditioning.predictor.parameters()]
    first = step(wav, adversarial=False, targets={"f0": f0, "voiced": voiced})
    assert set(first) >= {"mel", "pitch", "loss_g"}
    assert torch.isclose(first["loss_g"], first["mel"] + first["pitch"])
    assert all(not torch.equal(b, p) for b, p in zip(before, generator.conditioning.predictor.parameters()))
    for _ in range(15):
        last = step(wav, adversarial=False, targets={"f0": f0, "voiced": voiced})
    assert float(last["pitch"]) < float(first["pitch"]) / 2


def test_a_plain_generator_carries_no_conditioning_and_reports_no_auxiliary_loss():
    generator = Generator.from_config(SMALL, impl="eager")
    x = mel(6)[None]
    audio, losses = generator(x, targets={})
    assert losses == {} and torch.equal(audio, generator(x))
    assert generator.conditioning is None and generator.targets == ()
    assert gan_step(generator).g_train is generator  # no wrapper on its path


def test_a_checkpoint_with_the_sources_old_parameter_names_loads_and_gives_the_same_audio(tmp_path):
    """Before the pitch source became one component its parameters were `pitch_predictor.*`,
    `source.*` and `source_downs.*` (the shipped demo_pretrained.pt is such a file)."""
    from vocoder.checkpoint import RENAMED_PREFIXES, load_model, model_record, save_checkpoint
    generator = source_generator().eval()
    old = {}
    for key, value in generator.state_dict().items():
        for before, now in RENAMED_PREFIXES.items():
            if key.startswith(now):
                key = before + key[len(now):]
        old[key] = value
    assert any(k.startswith("source_downs.") for k in old) and not any(k.startswith("conditioning.") for k in old)
    save_checkpoint(tmp_path / "old.pt", generator=old, model=model_record(generator, MEL))
    loaded, _ = load_model(tmp_path / "old.pt")
    x = mel(12)[None]
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), generator(x))


def test_bf16_inference_keeps_the_predicted_f0_and_so_the_waveform():
    """The predictor runs in float32 under autocast: in bf16 its rounded logits moved the F0, whose
    phase integrates over the signal, and the shipped demo model's bf16 audio was uncorrelated with
    its fp32 audio (SNR about 0.75 dB on the held-out clips)."""
    from vocoder.bench.precision import DEFAULT_CHECKPOINTS, recordings, snr_db

    wav = recordings(1, 1.5)[0]
    outputs = {}
    for precision in ("fp32", "bf16"):
        voc = Vocoder.from_checkpoint(DEFAULT_CHECKPOINTS[0], device="cpu", precision=precision)
        mel = voc.mel(wav[None])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            f0, _ = voc.generator.conditioning.predictor.predict(mel)
        assert f0.dtype == torch.float32
        outputs[precision] = (f0, voc.resynthesize(wav, 24000).float())
    assert torch.equal(outputs["bf16"][0], outputs["fp32"][0])
    assert snr_db(outputs["fp32"][1], outputs["bf16"][1]) > 15
