"""Fine-tuning (train.init_from, +experiment=finetune) from a small NVIDIA release written by NVIDIA's own
code (the `bigvgan` 2.4.1 test reference): its generator, MPD + CQT discriminator and both AdamW states
after a few real updates of its train.py loop body. The first step of ours equals the next step of theirs
on the same batch; our optimisers hold their moments; settings come from the release's config.json; our
own training checkpoints and a generator alone start runs too; train.trainable / train.freeze_stages."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from model_configs import mel_config, plain_train

import vocoder.train as vt
from vocoder.checkpoint import save_generator
from vocoder.training.distributed import setup
from vocoder.training.init_from import our_key

bigvgan = pytest.importorskip("bigvgan.bigvgan")
nv_disc = pytest.importorskip("bigvgan.discriminators")
nv_loss = pytest.importorskip("bigvgan.loss")
nv_mel = pytest.importorskip("bigvgan.meldataset")
nv_env = pytest.importorskip("bigvgan.env")

pytestmark = pytest.mark.usefixtures("one_thread")
SR, SEGMENT = 24000, 2048
GENERATOR = {"resblock": "2", "num_mels": 100, "upsample_rates": [4, 4, 4, 4], "upsample_kernel_sizes": [8, 8, 8, 8],
             "upsample_initial_channel": 16, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
             "activation": "snakebeta", "snake_logscale": True, "use_tanh_at_final": False,
             "use_bias_at_final": False}
DISCRIMINATORS = {"mpd_reshapes": [2, 3], "discriminator_channel_mult": 0.125, "use_spectral_norm": False,
                  "use_cqtd_instead_of_mrd": True, "cqtd_filters": 8, "cqtd_max_filters": 16,
                  "cqtd_hop_lengths": [256], "cqtd_n_octaves": [5], "cqtd_bins_per_octaves": [12]}
TRAINING = {"learning_rate": 1e-3, "adam_b1": 0.8, "adam_b2": 0.99, "lr_decay": 0.9, "use_multiscale_melloss": True,
            "lambda_melloss": 15, "clip_grad_norm": 500, "fmax_for_loss": None, "segment_size": SEGMENT,
            "batch_size": 2, "seed": 1234, "num_gpus": 0}


def batch(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(SEGMENT) / SR
    return (0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(2, SEGMENT, generator=g)).unsqueeze(1)


class Nvidia:
    """NVIDIA's models, optimisers and schedules as its train.py builds (and, from files, resumes) them."""

    def __init__(self, h, folder: Path | None = None) -> None:
        self.h = h
        torch.manual_seed(0)
        self.generator, self.mpd = bigvgan.BigVGAN(h), nv_disc.MultiPeriodDiscriminator(h)
        self.mrd = nv_disc.MultiScaleSubbandCQTDiscriminator(h)
        self.mel_loss = nv_loss.MultiScaleMelSpectrogramLoss(sampling_rate=h.sampling_rate)
        last_epoch, do = -1, None
        if folder is not None:  # train.py's resume from the files of a release
            g = torch.load(folder / "bigvgan_generator.pt", weights_only=True)
            do = torch.load(folder / "bigvgan_discriminator_optimizer.pt", weights_only=True)
            self.generator.load_state_dict(g["generator"])
            self.mpd.load_state_dict(do["mpd"])
            self.mrd.load_state_dict(do["mrd"])
            self.steps, last_epoch = do["steps"] + 1, do["epoch"]
        betas = [h.adam_b1, h.adam_b2]
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), h.learning_rate, betas=betas)
        self.optim_d = torch.optim.AdamW(itertools.chain(self.mrd.parameters(), self.mpd.parameters()),
                                         h.learning_rate, betas=betas)
        if do is not None:
            self.optim_g.load_state_dict(do["optim_g"])
            self.optim_d.load_state_dict(do["optim_d"])
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, h.lr_decay, last_epoch=last_epoch)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, h.lr_decay, last_epoch=last_epoch)

    def step(self, y: torch.Tensor, schedule: bool = True) -> dict[str, float]:
        """The body of train.py's training loop (no freeze step), on audio (B, 1, T); it checkpoints
        after the optimiser steps, before the schedules step (schedule=False)."""
        h = self.h
        x = nv_mel.mel_spectrogram(y.squeeze(1), h.n_fft, h.num_mels, h.sampling_rate, h.hop_size, h.win_size,
                                   h.fmin, h.fmax)
        y_g_hat = self.generator(x)
        self.optim_d.zero_grad()
        y_df_hat_r, y_df_hat_g, _, _ = self.mpd(y, y_g_hat.detach())
        loss_disc_f, _, _ = nv_loss.discriminator_loss(y_df_hat_r, y_df_hat_g)
        y_ds_hat_r, y_ds_hat_g, _, _ = self.mrd(y, y_g_hat.detach())
        loss_disc_s, _, _ = nv_loss.discriminator_loss(y_ds_hat_r, y_ds_hat_g)
        loss_disc_all = loss_disc_s + loss_disc_f
        loss_disc_all.backward()
        torch.nn.utils.clip_grad_norm_(self.mpd.parameters(), h.clip_grad_norm)
        torch.nn.utils.clip_grad_norm_(self.mrd.parameters(), h.clip_grad_norm)
        self.optim_d.step()
        self.optim_g.zero_grad()
        loss_mel = self.mel_loss(y, y_g_hat) * h.lambda_melloss
        _, y_df_hat_g, fmap_f_r, fmap_f_g = self.mpd(y, y_g_hat)
        loss_fm_f, (loss_gen_f, _) = nv_loss.feature_loss(fmap_f_r, fmap_f_g), nv_loss.generator_loss(y_df_hat_g)
        _, y_ds_hat_g, fmap_s_r, fmap_s_g = self.mrd(y, y_g_hat)
        loss_fm_s, (loss_gen_s, _) = nv_loss.feature_loss(fmap_s_r, fmap_s_g), nv_loss.generator_loss(y_ds_hat_g)
        loss_gen_all = loss_gen_s + loss_gen_f + loss_fm_s + loss_fm_f + loss_mel
        loss_gen_all.backward()
        torch.nn.utils.clip_grad_norm_(self.generator.parameters(), h.clip_grad_norm)
        self.optim_g.step()
        if schedule:
            self.sched_g.step()
            self.sched_d.step()
        return {"loss_d": loss_disc_all.item(), "loss_g": loss_gen_all.item(), "mel": loss_mel.item()}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A release folder as NVIDIA publishes one, after three real updates (steps 0, 1, 2) of NVIDIA's loop."""
    folder = tmp_path_factory.mktemp("release")
    h = nv_env.AttrDict({**GENERATOR, **mel_config("tiny"), **DISCRIMINATORS, **TRAINING})
    nv = Nvidia(h)
    for seed in range(3):
        nv.step(batch(seed), schedule=seed < 2)  # train.py saves step 2 before its schedules step
    torch.save({"generator": nv.generator.state_dict()}, folder / "bigvgan_generator.pt")
    torch.save({"mpd": nv.mpd.state_dict(), "mrd": nv.mrd.state_dict(), "optim_g": nv.optim_g.state_dict(),
                "optim_d": nv.optim_d.state_dict(), "steps": 2, "epoch": 0},
               folder / "bigvgan_discriminator_optimizer.pt")
    (folder / "config.json").write_text(json.dumps(dict(h)))
    return folder


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(folder / f"{i}.wav", (rng.random(SR // 4, dtype=np.float32) - 0.5) * 0.5, SR, subtype="FLOAT")
    return folder


def finetune(wavs: Path, run_dir: Path, *overrides: str):
    cfg = plain_train(["+experiment=finetune", f"data.root={wavs}", "data.val_files=0", f"run_dir={run_dir}",
                       f"data.segment_size={SEGMENT}", "train.device=cpu", "train.batch_size=2",
                       "train.num_workers=0", "train.validation_files=0", "train.max_steps=10", *overrides])
    return vt.build_trainer(cfg, setup("cpu"))


def continuing(wavs, release, tmp_path):
    return finetune(wavs, tmp_path / "run", f"train.init_from={release}", "train.init_schedule=continue",
                    f"train.learning_rate={TRAINING['learning_rate']}", f"train.lr_decay={TRAINING['lr_decay']}",
                    f"train.clip_grad_norm={TRAINING['clip_grad_norm']}")


def test_settings_come_from_the_release(wavs, release, tmp_path):
    trainer = continuing(wavs, release, tmp_path)
    assert {k: trainer.generator.config[k] for k in GENERATOR} == GENERATOR
    assert trainer.mel.config == mel_config("tiny")
    assert set(trainer.discriminators) == {"mpd", "cqtd"}
    recorded = trainer.run_config["discriminator"]
    assert {k: recorded[k] for k in DISCRIMINATORS} == DISCRIMINATORS
    trainer.log.close()


def test_first_step_equals_nvidias_next_step_and_the_moments_are_theirs(wavs, release, tmp_path, capsys):
    trainer = continuing(wavs, release, tmp_path)
    said = trainer.initialise(trainer.init)
    assert "(generator, discriminators mpd + cqtd, both optimiser states); step 3" in said
    h = nv_env.AttrDict(json.loads((release / "config.json").read_text()))
    nv = Nvidia(h, release)
    assert trainer.step == nv.steps == 3
    # every AdamW moment is the one NVIDIA saved for that parameter (matched by identity on their side)
    theirs_d = dict(itertools.chain(((f"cqtd.{our_key(n)}", p) for n, p in nv.mrd.named_parameters()),
                                    ((f"mpd.{our_key(n)}", p) for n, p in nv.mpd.named_parameters())))
    theirs_g = {our_key(n): p for n, p in nv.generator.named_parameters()}
    for ours, theirs, module, same in ((trainer.gan.optim_g, nv.optim_g, trainer.generator, theirs_g),
                                       (trainer.gan.optim_d, nv.optim_d, trainer.discriminators, theirs_d)):
        for name, p in module.named_parameters():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(ours.state[p][key], theirs.state[same[name]][key]), (name, key)
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)
    y = batch(7)
    want = nv.step(y)
    got = trainer.gan(y)
    for key in want:
        assert float(got[key]) == pytest.approx(want[key], rel=1e-5), key
    # and the update that follows is theirs (the moments, learning rate and clipping all take part)
    for name, p in trainer.generator.named_parameters():
        torch.testing.assert_close(p.detach(), theirs_g[name].detach(), rtol=1e-4, atol=1e-6, msg=name)
    for name, p in trainer.discriminators.named_parameters():
        torch.testing.assert_close(p.detach(), theirs_d[name].detach(), rtol=1e-4, atol=1e-6, msg=name)
    trainer.log.close()


def test_restart_keeps_the_moments_and_starts_the_schedule_over(wavs, release, tmp_path):
    trainer = finetune(wavs, tmp_path / "run", f"train.init_from={release}", "train.learning_rate=2e-5")
    trainer.initialise(trainer.init)
    assert trainer.step == 0
    for optim, sched in ((trainer.gan.optim_g, trainer.gan.sched_g), (trainer.gan.optim_d, trainer.gan.sched_d)):
        assert optim.param_groups[0]["lr"] == 2e-5 and sched.last_epoch == 0
        assert all(float(optim.state[p]["step"]) == 3 for p in optim.param_groups[0]["params"])
    trainer.log.close()


def test_a_contradicting_model_override_is_refused_naming_the_keys(wavs, release, tmp_path):
    with pytest.raises(ValueError, match=r"model\.upsample_initial_channel \(checkpoint 16, config 64\).*"
                                         r"discriminator\.use_cqtd_instead_of_mrd \(checkpoint true, config false\)"):
        finetune(wavs, tmp_path / "run", f"train.init_from={release}", "model=tiny", "discriminator=tiny")
    # agreeing overrides are fine
    finetune(wavs, tmp_path / "run", f"train.init_from={release}", "+model.num_mels=100").log.close()


def test_from_our_training_checkpoint_then_resume_beats_init_from(wavs, release, tmp_path, capsys):
    first = finetune(wavs, tmp_path / "a", f"train.init_from={release}", "train.max_steps=1")
    first.fit()
    ours = tmp_path / "a" / "checkpoints" / "step_00000001.pt"
    second = finetune(wavs, tmp_path / "b", f"train.init_from={ours}", "train.max_steps=2",
                      "train.init_schedule=continue")
    second.fit()
    out = capsys.readouterr().out
    assert f"training from {ours} (generator, discriminators mpd + cqtd, both optimiser states); step 1" in out
    assert second.step == 2 and second.gan.sched_g.last_epoch == 2
    again = finetune(wavs, tmp_path / "b", f"train.init_from={ours}", "train.max_steps=3")
    again.fit()
    assert "resumed from" in capsys.readouterr().out and again.step == 3


def test_a_generator_alone_needs_discriminator_settings(wavs, tmp_path, capsys):
    torch.manual_seed(0)
    from vocoder.models import Generator
    source = tmp_path / "g.pt"
    save_generator(source, Generator.from_config(GENERATOR), mel_config("tiny"))
    with pytest.raises(ValueError, match="records no discriminator settings.*discriminator=bigvgan_v2"):
        finetune(wavs, tmp_path / "run", f"train.init_from={source}")
    trainer = finetune(wavs, tmp_path / "run", f"train.init_from={source}", "discriminator=tiny", "train.max_steps=1")
    trainer.fit()
    assert f"training from the generator of {source} (discriminators from scratch)" in capsys.readouterr().out


def test_a_release_without_training_state_gives_fresh_discriminators_of_its_config(wavs, release, tmp_path, capsys):
    folder = tmp_path / "generator_only"
    folder.mkdir()
    for name in ("bigvgan_generator.pt", "config.json"):
        (folder / name).write_bytes((release / name).read_bytes())
    trainer = finetune(wavs, tmp_path / "run", f"train.init_from={folder}", "train.max_steps=1")
    assert set(trainer.discriminators) == {"mpd", "cqtd"}
    trainer.fit()
    assert "(discriminators from scratch)" in capsys.readouterr().out


def test_trainable_snake_and_freeze_stages_leave_the_rest_unchanged(wavs, release, tmp_path):
    from vocoder.training.trainable import frozen_names
    trainer = finetune(wavs, tmp_path / "run", f"train.init_from={release}", "train.trainable=snake",
                       "train.freeze_stages=1")
    trainer.initialise(trainer.init)
    before = {n: p.detach().clone() for n, p in trainer.generator.named_parameters()}
    trainer.gan(batch(3))
    changed = {n for n, p in trainer.generator.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.endswith((".alpha", ".beta")) for n in changed)  # Snake α, β only
    assert not any(n.startswith(("ups.0.", "resblocks.0.")) for n in changed)  # not in the first stage
    assert frozen_names(trainer.generator, "all", 2) == {
        n for n, _ in trainer.generator.named_parameters() if n.startswith(("conv_pre.", "ups.0.", "ups.1.",
                                                                             "resblocks.0.", "resblocks.1."))}
    with pytest.raises(ValueError, match="train.freeze_stages must be between 0 and the generator's 4"):
        frozen_names(trainer.generator, "all", 5)
    trainer.log.close()



def test_the_entry_point_refuses_a_contradicting_model_in_one_line(wavs, release, tmp_path, capsys):
    cfg = plain_train(["+experiment=finetune", f"train.init_from={release}", f"data.root={wavs}", "model=tiny",
                       "train.device=cpu", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stop:
        vt._run(cfg)  # what `python -m vocoder.train` runs once Hydra has composed the config
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "model.upsample_initial_channel (checkpoint 16, config 64)" in lines[0]
