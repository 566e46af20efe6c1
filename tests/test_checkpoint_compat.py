"""Checkpoints written before the model/mel split (tests/data, by commit 4dc62bf: one flat model
config) load into today's code and give the audio recorded when they were written; a run resumes
from an old training checkpoint."""

import shutil
from pathlib import Path

import pytest
import torch
from model_configs import mel_config, plain_train

import vocoder.train as vt
from vocoder import Vocoder
from vocoder.checkpoint import load_checkpoint, read_model_config
from vocoder.training.distributed import setup

DATA = Path(__file__).resolve().parent / "data"
EXPECTED = torch.load(DATA / "v0_expected.pt", weights_only=True)
OLD = ("v0_training_step", "v0_generator")
# the reduced tiny model both were written with
GENERATOR = {"resblock": "2", "num_mels": 100, "upsample_rates": [4, 4, 4, 4], "upsample_kernel_sizes": [8, 8, 8, 8],
             "upsample_initial_channel": 16, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
             "activation": "snakebeta", "snake_logscale": True, "use_tanh_at_final": False,
             "use_bias_at_final": False}

pytestmark = pytest.mark.usefixtures("one_thread", "torch_backend")


def test_the_flat_configs_translate():
    training = read_model_config(load_checkpoint(DATA / "v0_training_step.pt"), "training")
    assert training == {"generator": {**GENERATOR, "init": "bigvgan"}, "mel": mel_config("tiny")}
    generator = read_model_config(load_checkpoint(DATA / "v0_generator.pt"), "generator")
    assert generator == {"generator": {**GENERATOR, "init": "torch"}, "mel": {**mel_config("tiny"), "fmax": 8000}}


@pytest.mark.parametrize("name", OLD)
def test_an_old_checkpoint_gives_the_recorded_audio(name):
    voc = Vocoder.from_checkpoint(DATA / f"{name}.pt", device="cpu")
    expected = EXPECTED[name]
    assert expected["vocoded"].abs().max() > 0 and expected["mel_of_audio"].std() > 0.5
    for key, got in (("mel_of_audio", voc.mel_spectrogram(EXPECTED["audio"])), ("vocoded", voc(EXPECTED["mel"])),
                     ("resynthesized", voc.resynthesize(EXPECTED["audio"], 24000))):
        want = expected[key]
        assert got.shape == want.shape, key
        # float32 rounding differs between CPUs (their SIMD paths): 0 on the machine that wrote the
        # recordings, up to 3.9e-6 of the maximum on an AMD EPYC; a changed model or mel is far above 1e-5
        assert (got - want).abs().max().item() <= 1e-5 * want.abs().max().item(), key


def test_a_run_resumes_from_an_old_training_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(DATA / "v0_training_step.pt", run_dir / "checkpoints" / "step_00000001.pt")
    overrides = ["+experiment=demo", "train.init_from=null", "~model.pitch_source",  # written before the source
                 "train.device=cpu", "data.segment_size=4096", "train.batch_size=2",
                 "train.num_workers=0", "train.validation_files=0", "model.upsample_initial_channel=16",
                 "model.resblock_kernel_sizes=[3]", "model.resblock_dilation_sizes=[[1,3]]",
                 "discriminator.discriminator_channel_mult=0.03125", "discriminator.mrd_channel_mult=0.0625",
                 "discriminator.mpd_reshapes=[2]", "train.activation_checkpointing=true", f"run_dir={run_dir}"]
    trainer = vt.build_trainer(plain_train(overrides), setup("cpu"))
    assert trainer.resume() == run_dir / "checkpoints" / "step_00000001.pt" and trainer.step == 1
    saved = load_checkpoint(DATA / "v0_training_step.pt")
    for key, value in saved["generator"].items():
        assert torch.equal(trainer.generator.state_dict()[key], value), key
    assert trainer.gan.sched_g.last_epoch == 1
    trainer.log.close()
