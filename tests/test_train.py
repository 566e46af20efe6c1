"""Training pipeline: Hydra configs, the entry point end to end, resume, bad input, two-process DDP.

Everything runs the tiny demo setting on the CPU (segment 4096, batch 2, no loader workers, one
validation file), in a subprocess where the real command line is what is tested.
"""

import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from child_env import child_env
from model_configs import CONFIGS, compose_train
from model_configs import plain_train as plain
from omegaconf import OmegaConf

import vocoder.train as vt  # registers the ${vocoder_data:...} resolver
from vocoder.atomic import temp_path
from vocoder.checkpoint import complete_model_config, load_checkpoint, load_model, save_generator
from vocoder.models import build_discriminators
from vocoder.models.discriminators import DEFAULTS
from vocoder.training.loop import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "vocoder" / "data" / "demo"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
NEEDS = {"libritts": ["data.root=/data/LibriTTS"],  # mandatory values an experiment leaves open
         "finetune": ["data.root=/data/wavs", "train.init_from=/data/release"]}
SMALL = ["train.init_from=null", "train.device=cpu", "data.segment_size=4096", "train.batch_size=2",
         "train.num_workers=0",
         "train.validation_files=1", "train.log_interval=1", "train.freeze_steps=0"]
SR = 24000


def checkpoints(run_dir: Path, folder: str = "checkpoints") -> list[str]:
    return sorted(p.name for p in (run_dir / folder).iterdir())


def run_cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = child_env(OMP_NUM_THREADS="1")  # as fast for the tiny model, and no spinning threads on a busy machine
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_noise(path: Path, samples: int = SR // 2, seed: int = 0) -> None:
    audio = (np.random.default_rng(seed).random(samples, dtype=np.float32) - 0.5) * 0.5
    sf.write(path, audio, SR, subtype="FLOAT")


pytestmark = pytest.mark.usefixtures("one_thread")


def trainer(env, run_dir: Path, *overrides: str):
    """A Trainer of the tiny demo setting in `run_dir` (no validation unless overridden)."""
    cfg = plain(["+experiment=demo", *SMALL, "train.validation_files=0", "train.max_steps=2",
                 "train.checkpoint_interval=100", f"run_dir={run_dir}", *overrides])
    return vt.build_trainer(cfg, env)


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(name):
    cfg = plain([f"+experiment={name}", *NEEDS.get(name, [])])
    assert cfg["experiment_name"] and cfg["run_dir"] == f"runs/{cfg['experiment_name']}"
    TrainOptions(**cfg["train"])  # every train: key is a known option, with valid values
    if name == "finetune":  # model, mel and discriminators: train.init_from's (tests/test_finetune.py)
        assert cfg["model"] == cfg["mel"] == cfg["discriminator"] == {}
        return
    model, mel = cfg["model"], cfg["mel"]
    assert math.prod(model["upsample_rates"]) == mel["hop_size"] and model["num_mels"] == mel["num_mels"]
    assert cfg["data"]["segment_size"] % mel["hop_size"] == 0
    assert set(cfg["discriminator"]) == set(DEFAULTS)  # the group's files extend discriminator/base


def test_libritts_experiment():
    cfg = compose_train(["+experiment=libritts", "data.root=/data/LibriTTS"], hydra=True)
    choices = cfg.hydra.runtime.choices
    assert (choices.model, choices.mel, choices.data, choices.discriminator) == (
        "bigvgan_v2_24khz_100band_256x", "24khz_100band", "libritts", "bigvgan_v2")
    model, mel, data, train = cfg.model, cfg.mel, cfg.data, cfg.train
    assert list(model.upsample_rates) == [4, 4, 2, 2, 2, 2] and model.upsample_initial_channel == 1536
    assert (model.num_mels, model.resblock, mel.sampling_rate, mel.hop_size, mel.fmax) == (100, "1", 24000, 256, None)
    assert (data.segment_size, train.batch_size, train.lambda_mel) == (65536, 4, 15)
    assert data.root == "/data/LibriTTS" and "train-clean-100" in data.train_subsets
    assert cfg.discriminator.use_cqtd_instead_of_mrd is True and cfg.discriminator.cqtd_filters == 128
    assert cfg.discriminator.cqtd_hop_lengths == [512, 256, 256]  # from discriminator/base
    assert set(build_discriminators(OmegaConf.to_container(cfg.discriminator), 24000)) == {"mpd", "cqtd"}


def test_libritts_needs_its_root():
    with pytest.raises(Exception, match="data.root"):
        plain(["+experiment=libritts"])


def test_libritts_files_from_the_config(tmp_path):
    for subset, count in (("train-clean-100", 3), ("dev-clean", 2)):
        for i in range(count):
            (tmp_path / subset / "19" / "198").mkdir(parents=True, exist_ok=True)
            write_noise(tmp_path / subset / "19" / "198" / f"19_198_{i:06d}.wav", 512, seed=i)
    cfg = plain(["+experiment=libritts", f"data.root={tmp_path}", "data.train_subsets=[train-clean-100]"])
    train, val = vt.data_files(cfg["data"])
    assert [p.parent.parent.parent.name for p in train] == ["train-clean-100"] * 3
    assert [p.parent.parent.parent.name for p in val] == ["dev-clean"] * 2


def test_demo_experiment():
    cfg = compose_train(["+experiment=demo"], hydra=True)
    assert cfg.hydra.runtime.choices.model == "demo" and cfg.hydra.runtime.choices.data == "demo"
    assert cfg.model.upsample_initial_channel == 112 and cfg.experiment_name == "demo"
    assert 0 < cfg.train.freeze_steps < cfg.train.max_steps  # mel loss first, then the GAN losses come in
    data = OmegaConf.to_container(cfg.data, resolve=True)
    root = Path(data["root"])
    assert root == DEMO_DATA and root.is_dir()
    assert Path(data["train_filelist"]) == root / "train.txt" and (root / "train.txt").is_file()
    assert Path(data["val_filelist"]) == root / "val.txt" and (root / "val.txt").is_file()
    train, val = vt.data_files(data)
    assert train and val and not set(train) & set(val)
    assert all(p.is_file() for p in train + val)
    # it fine-tunes the generator that recipes/demo/pretrain.sh made, which ships in the package (≤ 2 MB)
    init = Path(OmegaConf.to_container(cfg.train, resolve=True)["init_from"])
    assert init == DEMO_DATA.parent / "demo_pretrained.pt" and 0 < init.stat().st_size <= 2_000_000
    generator, mel = load_model(init)
    expected = complete_model_config(OmegaConf.to_container(OmegaConf.create({"generator": cfg.model, "mel": cfg.mel})))
    assert complete_model_config({"generator": generator.config, "mel": mel}) == expected


def test_cfg_job_from_the_command_line():
    result = run_cli(["-m", "vocoder.train", "+experiment=demo", "--cfg", "job", "--resolve"], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = yaml.safe_load(result.stdout)
    assert cfg["experiment_name"] == "demo" and Path(cfg["data"]["root"]) == DEMO_DATA


def test_a_mel_that_does_not_fit_the_model_is_one_line(tmp_path):
    result = run_cli(["-m", "vocoder.train", "+experiment=demo", "mel=22khz_80band", "train.init_from=null",
                      "train.device=cpu",
                      f"run_dir={tmp_path}"], timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["vocoder.train: error: model.num_mels=100 but mel.num_mels=80: the "
                                          "generator takes the mel's bands (pick a model and a mel that fit)"]


# ---------------------------------------------------------------- the entry point, end to end


def test_train_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(["-m", "vocoder.train", "+experiment=demo", *SMALL, "train.max_steps=3",
                      "train.checkpoint_interval=1", "train.validation_interval=2", "train.keep_checkpoints=2",
                      f"run_dir={run_dir}"])
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "training from scratch" in out
    for step in (1, 2, 3):
        assert f"step {step}/3 |" in out and f"step {step}: checkpoint" in out
    validated = [line.split(":")[0] for line in out.splitlines() if "validation mel L1" in line
                 and line.startswith("step")]
    assert validated == ["step 0", "step 2", "step 3"]  # at the start, every interval and at the end
    assert "done: validation mel L1" in out

    # keep_checkpoints=2: the oldest is gone; no temp files of the atomic writes are left
    assert checkpoints(run_dir) == ["step_00000002.pt", "step_00000003.pt"]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "step_00000003.pt")
    assert ckpt["step"] == 3 and ckpt["model"]["generator"]["upsample_initial_channel"] == 112
    assert ckpt["model"]["mel"] == ckpt["run_config"]["mel"] and ckpt["run_config"]["train"]["max_steps"] == 3
    assert {"generator", "discriminators", "optim_g", "optim_d", "sched_g", "sched_d"} <= set(ckpt)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss_g", "train/loss_d", "train/mel", "train/lr", "validation/mel_l1",
            "validation/m_stft", "validation/pesq"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss_g")] == [1, 2, 3]
    assert [e.step for e in acc.Scalars("validation/mel_l1")] == [0, 2, 3]
    assert "target/0" in tags["audio"] and "generated/0" in tags["audio"] and "mel/0" in tags["images"]


def test_freeze_steps_then_the_gan(env, tmp_path, capsys):
    t = trainer(env, tmp_path / "run", "train.freeze_steps=2", "train.max_steps=3")
    d_start = {k: v.detach().clone() for k, v in t.discriminators.named_parameters()}
    seen = []
    for batch in t.train_batches:
        if t.step == 3:
            break
        seen.append(set(t.train_step(batch["audio"], targets={"f0": batch["f0"], "voiced": batch["voiced"]})))
        t.step += 1
        if t.step == 2:
            assert all(torch.equal(v, d_start[k]) for k, v in t.discriminators.named_parameters())
    assert "loss_d" not in seen[0] and "loss_d" not in seen[1] and "adv_mpd" not in seen[1]
    assert {"loss_d", "adv_mpd", "fm_mrd"} <= seen[2]
    assert any(not torch.equal(v, d_start[k]) for k, v in t.discriminators.named_parameters())
    out = capsys.readouterr().out
    assert "step 1: discriminators frozen, mel loss only up to step 2" in out
    assert "step 3: the discriminators and GAN losses come in" in out


# ---------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory):
    """A run trained in-process to step 2 (checkpoint at the end): (run dir, its trainer)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    first = trainer(env, run_dir)
    first.fit()
    assert first.step == 2 and checkpoints(run_dir) == ["step_00000002.pt"]
    return run_dir, first


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def assert_equal_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_restores_everything(env, trained):
    run_dir, first = trained
    fresh = trainer(env, run_dir)
    # same seed, so only resume() can make the weights equal to the trained ones
    assert not all(torch.equal(p, q) for p, q in zip(fresh.generator.parameters(), first.generator.parameters()))
    assert fresh.resume() == run_dir / "checkpoints" / "step_00000002.pt"
    assert fresh.step == 2
    assert_equal_states(first.generator.state_dict(), fresh.generator.state_dict())
    assert_equal_states(first.discriminators.state_dict(), fresh.discriminators.state_dict())
    for name in ("optim_g", "optim_d"):
        saved, loaded = getattr(first.gan, name).state_dict(), getattr(fresh.gan, name).state_dict()
        assert saved["state"].keys() == loaded["state"].keys() and saved["state"]
        for index, state in saved["state"].items():
            assert {"step", "exp_avg", "exp_avg_sq"} <= set(state)
            assert_equal_states(state, loaded["state"][index])
        assert saved["param_groups"] == loaded["param_groups"]
    for name in ("sched_g", "sched_d"):
        assert getattr(first.gan, name).state_dict() == getattr(fresh.gan, name).state_dict()
        assert getattr(fresh.gan, name).last_epoch == 2
    fresh.log.close()


def test_resumed_fit_continues_at_the_saved_step(env, trained, tmp_path, capsys):
    run_dir = copy_run(trained[0], tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a save the killed run (this dead process) left half-written:
    unfinished = temp_path(run_dir / "checkpoints" / "step_00000004.pt")
    unfinished = unfinished.with_name(unfinished.name.replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    unfinished.write_bytes(b"x" * 2**20)
    resumed = trainer(env, run_dir, "train.max_steps=3")
    capsys.readouterr()
    resumed.fit()
    out = capsys.readouterr().out
    assert "removed 1 unfinished checkpoint files (1.0 MiB) left by a run that was killed" in out
    assert not unfinished.exists()
    assert f"resumed from {run_dir / 'checkpoints' / 'step_00000002.pt'} at step 2" in out
    assert "step 3/3 |" in out and "step 1/3" not in out and "step 2/3" not in out
    assert resumed.step == 3 and checkpoints(run_dir) == ["step_00000002.pt", "step_00000003.pt"]
    assert load_checkpoint(run_dir / "checkpoints" / "step_00000003.pt")["step"] == 3


@pytest.mark.parametrize("overrides, differs", [
    (["model.upsample_initial_channel=32"], "model.upsample_initial_channel"),
    (["mel.fmax=8000"], "mel.fmax"),
])
def test_resume_refuses_a_different_model(env, trained, overrides, differs):
    run_dir, _ = trained
    other = trainer(env, run_dir, *overrides)
    with pytest.raises(RuntimeError, match=rf"different model config \(differs in: {differs}\)") as err:
        other.resume()
    assert str(run_dir / "checkpoints" / "step_00000002.pt") in str(err.value)
    assert other.step == 0
    other.log.close()


def test_resume_compares_the_recorded_discriminator_settings_not_the_run_config(env, trained, tmp_path):
    run_dir = copy_run(trained[0], tmp_path)
    path = run_dir / "checkpoints" / "step_00000002.pt"
    ckpt = load_checkpoint(path)
    assert ckpt["model"]["discriminator"]["mpd_reshapes"] != [2]  # the model record holds them
    ckpt["run_config"] = None  # written for the record only: resume never reads it
    torch.save(ckpt, path)
    other = trainer(env, run_dir, "discriminator.mpd_reshapes=[2]")
    with pytest.raises(RuntimeError, match=r"different discriminator config \(differs in: mpd_reshapes\)"):
        other.resume()
    other.log.close()
    same = trainer(env, run_dir)
    assert same.resume() == path and same.step == 2
    same.log.close()


def test_resume_across_activation_checkpointing(env, trained):
    run_dir, first = trained
    other = trainer(env, run_dir, "train.activation_checkpointing=true")
    assert other.generator.activation_checkpointing
    assert other.resume() is not None and other.step == 2
    assert_equal_states(first.generator.state_dict(), other.generator.state_dict())
    other.log.close()


def test_init_from_starts_a_fresh_run_from_a_generator(env, trained, tmp_path, capsys):
    run_dir, first = trained
    source = tmp_path / "generator.pt"
    save_generator(source, first.generator, first.mel.config)  # a generator-only checkpoint
    fresh = trainer(env, tmp_path / "new", "train.max_steps=1")
    started = trainer(env, tmp_path / "run", "train.max_steps=1", f"train.init_from={source}")
    started.initialise(str(source))
    assert_equal_states(first.generator.state_dict(), started.generator.state_dict())
    assert started.step == 0  # the step count and schedules start over; the discriminators start fresh
    assert_equal_states(fresh.discriminators.state_dict(), started.discriminators.state_dict())
    capsys.readouterr()
    started.fit()
    out = capsys.readouterr().out
    assert f"training from the generator of {source} (discriminators from scratch)" in out
    # a run's own checkpoint beats init_from: rerunning resumes instead of starting over
    again = trainer(env, tmp_path / "run", "train.max_steps=1", f"train.init_from={source}")
    again.fit()
    assert "resumed from" in capsys.readouterr().out
    for t in (fresh, again):
        t.log.close()


def test_init_from_refuses_another_model(env, trained, tmp_path):
    checkpoint = trained[0] / "checkpoints" / "step_00000002.pt"  # a training checkpoint works too
    with pytest.raises(ValueError, match=r"holds another model than the config says: model\.upsample_initial_channel "
                                         r"\(checkpoint 112, config 32\)"):
        trainer(env, tmp_path / "run", "model.upsample_initial_channel=32", f"train.init_from={checkpoint}")


def test_resume_false_sets_the_earlier_checkpoints_aside(env, trained, tmp_path, capsys):
    run_dir = copy_run(trained[0], tmp_path)
    fresh = trainer(env, run_dir, "train.resume=false", "train.max_steps=1", "model.upsample_initial_channel=32")
    fresh.fit()
    assert "moved the run's earlier checkpoints to" in capsys.readouterr().out
    assert fresh.step == 1
    assert checkpoints(run_dir) == ["step_00000001.pt"]
    assert checkpoints(run_dir, "checkpoints.old-1") == ["step_00000002.pt"]  # nothing lost


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("overrides", [["+experiment=demo", "data=folder"], ["+experiment=libritts"]])
def test_missing_data_root(env, tmp_path, overrides):
    missing = "/nonexistent/corpus"
    cfg = plain([*overrides, *SMALL, f"data.root={missing}", f"run_dir={tmp_path}"])
    with pytest.raises(FileNotFoundError, match=missing):
        vt.build_trainer(cfg, env)


def test_empty_filelist(env, tmp_path):
    write_noise(tmp_path / "a.wav")
    (tmp_path / "train.txt").write_text("# nothing yet\n\n")
    cfg = plain(["+experiment=demo", "data=folder", *SMALL, f"data.root={tmp_path}",
                 f"data.train_filelist={tmp_path / 'train.txt'}", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(ValueError, match=rf"filelist {tmp_path / 'train.txt'} is empty"):
        vt.build_trainer(cfg, env)


def test_broken_files_are_skipped_with_a_count(env, tmp_path, caplog):
    for i in range(4):  # clip_0 is held out for validation (data.val_files=1)
        write_noise(tmp_path / f"clip_{i}.wav", seed=i)
    (tmp_path / "clip_4_zero_bytes.wav").write_bytes(b"")
    sf.write(tmp_path / "clip_5_no_frames.wav", np.zeros(0, dtype=np.float32), SR)
    (tmp_path / "clip_6_text.wav").write_text("this is not audio\n" * 20)
    cfg = plain(["+experiment=demo", "data=folder", *SMALL, f"data.root={tmp_path}", "data.val_files=1",
                 f"run_dir={tmp_path / 'run'}"])
    with caplog.at_level(logging.WARNING):
        train_loader, val_loader = vt.loaders(cfg, env)
    assert "training set: skipped 3 broken of 6 files; 3 left" in caplog.text
    for name in ("clip_4_zero_bytes.wav", "clip_5_no_frames.wav", "clip_6_text.wav"):
        assert f"skipping {tmp_path / name}" in caplog.text
    assert sorted(p.name for p in train_loader.dataset.files) == ["clip_1.wav", "clip_2.wav", "clip_3.wav"]
    assert [p.name for p in val_loader.dataset.files] == ["clip_0.wav"]
    batch = next(iter(train_loader))
    assert batch["audio"].shape == (2, 1, 4096) and torch.isfinite(batch["audio"]).all()


def test_nan_in_a_batch_names_the_step_and_file(env, tmp_path):
    run = trainer(env, tmp_path / "run")
    dataset, seen = run.train_loader.dataset, []
    real_load = dataset.load

    def load(index):  # the first file of the first batch turns out to hold NaN
        audio = real_load(index)
        seen.append(str(dataset.files[index]))
        if len(seen) == 1:
            audio[:] = float("nan")
        return audio

    dataset.load = load
    with pytest.raises(FloatingPointError, match=r"^step 1: NaN/Inf in the training audio from ") as err:
        run.fit()
    assert seen[0] in str(err.value) and seen[1] not in str(err.value)
    assert run.step == 0 and not (tmp_path / "run" / "checkpoints").exists()
    run.log.close()


def test_a_loss_that_turns_nan_names_the_step(env, tmp_path):
    run = trainer(env, tmp_path / "run")
    run.gan.mel_loss = lambda real, fake: torch.full((), float("nan"))
    with pytest.raises(FloatingPointError,
                       match=r"^step 1: the generator loss is not finite \(mel nan, .*none yet"):
        run.fit()
    assert run.step == 0
    run.log.close()


# ---------------------------------------------------------------- two processes (gloo)


def test_two_process_ddp(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "vocoder.train",
                      "+experiment=demo", *SMALL, "train.max_steps=2", f"run_dir={run_dir}"])
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert checkpoints(run_dir) == ["step_00000002.pt"]
    assert load_checkpoint(run_dir / "checkpoints" / "step_00000002.pt")["step"] == 2
    # rank 0 alone prints, validates, saves and writes TensorBoard
    for line in ("training from scratch", "step 0: validation", "step 1/2 |", "step 2/2 |", "step 2: validation",
                 "step 2: checkpoint", "done: validation"):
        assert out.count(line) == 1, (line, out)
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
