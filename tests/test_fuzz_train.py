"""Training against a hostile but fair user: bad arguments (one line naming the key, exit 2, no
traceback), bad files (skipped with one warning each, counted, too many stop the run), unusable
checkpoints (corrupt newest: set aside, previous one taken; config.json of the wrong shape), and
kills during checkpoint writes (the previous checkpoint stays loadable, resume is exact)."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from child_env import child_env
import vocoder.train as vt
from test_train import ROOT, SR, plain, write_noise
from test_train_resume import LIGHT, assert_same_tensors
from vocoder.checkpoint import CheckpointError, load_checkpoint, load_generator

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


@pytest.fixture(scope="module")
def corpus(noise_corpus):
    """6 noise clips of 0.3 s: 3 batches of 2 per epoch, no validation."""
    return noise_corpus(6)


def overrides(corpus: Path, run_dir: Path, max_steps: int = 4, *more: str) -> list[str]:
    return ["+experiment=demo", "data=folder", f"data.root={corpus}", "data.val_files=0", "data.segment_size=2048",
            "train.batch_size=2", "train.num_workers=0", "train.device=cpu", "train.validation_files=0",
            "train.checkpoint_interval=2", "train.log_interval=100", f"train.max_steps={max_steps}",
            f"run_dir={run_dir}", *LIGHT, *more]


def fit(env, args: list[str]):
    trainer = vt.build_trainer(plain(args), env)
    try:
        trainer.fit()
    finally:
        trainer.log.close()
    return trainer


def cli(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    """Run `python -m vocoder.train ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [vt.__file__, *args, *QUIET])  # as `python -m vocoder.train` sets it
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")  # and Hydra finds the configs beside the file, as then
    capsys.readouterr()
    code = 0
    try:
        vt.main()
    except SystemExit as done:
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *expected: str) -> str:
    """Exit status 2 and stderr exactly one `vocoder.train: error:` line holding each of `expected`."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    assert lines[0].startswith("vocoder.train: error: ") and "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def straight(env, corpus, tmp_path_factory):
    """A run trained to step 4 without stopping (checkpoints at 2 and 4)."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    with torch.backends.mkldnn.flags(enabled=False):  # as every test runs (conftest): the same arithmetic
        return run_dir, fit(env, overrides(corpus, run_dir))


def ckpts(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


# ---------------------------------------------------------------- bad arguments

BAD_ARGUMENTS = [
    (["train.batch_size=0"], ["train.batch_size must be at least 1, got 0"]),
    (["train.max_steps=abc"], ["train.max_steps must be an integer, got 'abc'"]),
    (["train.precision=fp8"], ["train.precision", "'fp8'"]),
    (["train.learning_rate=-1"], ["train.learning_rate must be above 0"]),
    (["train.adam_betas=[0.8]"], ["train.adam_betas must be a list of 2 values"]),
    (["train.max_bad_file_fraction=1.5"], ["train.max_bad_file_fraction must be in [0, 1)"]),
    (["train.device=tpu"], ["train.device must be", "'tpu'"]),
    (["+train.nokey=1"], ["train.nokey is not a training option"]),
    (["train=3"], ["train must be a config group"]),
    (["data.root=/nonexistent"], ["data.root='/nonexistent' is not a folder"]),
    (["data=folder", "data.root=/nonexistent"], ["data.root='/nonexistent' is not a folder"]),
    (["data.segment_size=1000"], ["data.segment_size must be a positive multiple of mel.hop_size=256"]),
    (["train.batch_size=1000"], ["fewer than one batch", "train.batch_size=1000"]),
    # Hydra's own: override grammar, unknown keys, unknown group options
    (["train.batch_size=[1"], ["override 'train.batch_size=[1'"]),
    (["train.nokey=1"], ["Could not override 'train.nokey'", "+train.nokey=1"]),
    (["model=nosuch"], ["Could not find 'model/nosuch'", "tiny"]),
    (["data.root"], ["override 'data.root'", "missing EQUAL"]),
]


@pytest.mark.parametrize("args, expected", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_argument_is_one_line(monkeypatch, capsys, tmp_path, args, expected):
    code, _, err = cli(monkeypatch, capsys, ["+experiment=demo", "train.device=cpu", f"run_dir={tmp_path}", *args])
    one_line_error(code, err, *expected)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(monkeypatch, capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, ["+experiment=demo", "train.device=cuda", f"run_dir={tmp_path}"])
    one_line_error(code, err, "train.device=cuda but no CUDA device is available")


def test_missing_mandatory_value_is_one_line(monkeypatch, capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, ["+experiment=libritts", f"run_dir={tmp_path}"])
    one_line_error(code, err, "set data.root=...")


def test_bad_argument_from_the_real_command_line(tmp_path):
    env = child_env(OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "vocoder.train", "+experiment=demo", "train.max_steps=abc",
                             f"run_dir={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    one_line_error(result.returncode, result.stderr, "train.max_steps must be an integer, got 'abc'")


# ---------------------------------------------------------------- resuming: refusals and corrupt checkpoints


def test_resume_refusals_are_one_line(monkeypatch, capsys, corpus, straight, tmp_path):
    run_dir = Path(shutil.copytree(straight[0], tmp_path / "run"))
    code, _, err = cli(monkeypatch, capsys, [*overrides(corpus, run_dir), "model.upsample_initial_channel=32"])
    one_line_error(code, err, "step_00000004.pt was trained with a different model config (differs in: "
                              "model.upsample_initial_channel)", "train.resume=false")
    code, _, err = cli(monkeypatch, capsys, [*overrides(corpus, run_dir), "discriminator.mpd_reshapes=[2]"])
    one_line_error(code, err, "different discriminator config (differs in: mpd_reshapes)")
    code, _, err = cli(monkeypatch, capsys, overrides(corpus, run_dir, 3))
    one_line_error(code, err, "train.max_steps=3 is below the step of the newest checkpoint", "at step 4")
    code, out, err = cli(monkeypatch, capsys, overrides(corpus, run_dir, 4))  # done already: says so, status 0
    assert code == 0 and "the run is at train.max_steps=4 already" in out and not err
    assert ckpts(run_dir) == ["step_00000002.pt", "step_00000004.pt"]  # nothing touched


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(4096))
    elif how == "not a training checkpoint":
        torch.save({"generator": {}}, path)
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "not a training checkpoint"])
def test_corrupt_newest_checkpoint_is_set_aside_and_the_previous_taken(env, corpus, straight, tmp_path, how,
                                                                       caplog, capsys):
    run_dir = Path(shutil.copytree(straight[0], tmp_path / "run"))
    newest = run_dir / "checkpoints" / "step_00000004.pt"
    corrupt(newest, how)
    broken = newest.read_bytes()
    with caplog.at_level(logging.WARNING):
        resumed = fit(env, overrides(corpus, run_dir))
    assert f"resumed from {run_dir / 'checkpoints' / 'step_00000002.pt'} at step 2" in capsys.readouterr().out
    warning = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(warning) == 1 and str(newest) in warning[0] and "step_00000004.pt.corrupt" in warning[0]
    assert (run_dir / "checkpoints" / "step_00000004.pt.corrupt").read_bytes() == broken  # kept, not deleted
    assert ckpts(run_dir) == ["step_00000002.pt", "step_00000004.pt", "step_00000004.pt.corrupt"]
    # steps 3 and 4 again, exactly as the run that never stopped took them
    assert_same_tensors(straight[1].generator.state_dict(), resumed.generator.state_dict(), "generator")
    assert_same_tensors(straight[1].discriminators.state_dict(), resumed.discriminators.state_dict(), "disc")


def test_no_loadable_checkpoint_is_refused_with_what_to_do(monkeypatch, capsys, corpus, straight, tmp_path):
    run_dir = Path(shutil.copytree(straight[0], tmp_path / "run"))
    for path in (run_dir / "checkpoints").iterdir():
        corrupt(path, "truncated")
    code, _, err = cli(monkeypatch, capsys, overrides(corpus, run_dir))
    one_line_error(code, err, f"no checkpoint in {run_dir / 'checkpoints'} loads (2 tried; newest: ",
                   "step_00000004.pt", "train.resume=false")
    assert ckpts(run_dir) == ["step_00000002.pt", "step_00000004.pt"]  # refused: nothing renamed


@pytest.mark.parametrize("content, expected", [
    ([1, 2], "the model config must be a JSON object of settings"),
    ("bigvgan", "the model config must be a JSON object of settings"),
    ({"n_fft": None}, "n_fft must be a positive integer, got null"),
    ({"upsample_rates": "4,4"}, 'upsample_rates must be a non-empty list of positive integers, got "4,4"'),
    ({"fmax": "8k"}, 'fmax must be a number of Hz, at least 0, or null, got "8k"'),
])
def test_nvidia_config_json_of_the_wrong_shape_names_file_and_key(tmp_path, content, expected):
    from vocoder.models import Generator
    model = {k: v for k, v in plain(["+experiment=demo"])["model"].items()}
    torch.save({"generator": Generator.from_config(model).state_dict()}, tmp_path / "bigvgan_generator.pt")
    if isinstance(content, dict):
        content = {**model, **content}
    (tmp_path / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError) as err:
        load_generator(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'config.json'}: {expected}")


# ---------------------------------------------------------------- bad files while training


@pytest.fixture
def bad_corpus(tmp_path):
    """3 good clips and 3 that pass the header check but fail to load: NaN, Inf, and one that is
    deleted after start-up. One batch of 6 per epoch, so every file is drawn at every step."""
    for i in range(3):
        write_noise(tmp_path / f"good_{i}.wav", 7200, seed=i)
    for name, value in (("has_nan", np.nan), ("has_inf", np.inf)):
        audio = np.zeros(7200, np.float32)
        audio[1000] = value
        sf.write(tmp_path / f"{name}.wav", audio, SR, subtype="FLOAT")
    write_noise(tmp_path / "vanishes.wav", 7200, seed=9)
    return tmp_path


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_files_are_skipped_with_one_warning_each(env, bad_corpus, workers, caplog):
    args = overrides(bad_corpus, bad_corpus / "run", 3, "train.batch_size=6", f"train.num_workers={workers}",
                     "train.max_bad_file_fraction=0.5")
    trainer = vt.build_trainer(plain(args), env)
    (bad_corpus / "vanishes.wav").unlink()
    with caplog.at_level(logging.WARNING):
        trainer.fit()
    trainer.log.close()
    assert trainer.step == 3  # the run went on
    said = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(said) == 3, said  # once each, not once per epoch
    for name, reason in (("has_nan", "NaN or Inf"), ("has_inf", "NaN or Inf"), ("vanishes", "not found")):
        (line,) = [s for s in said if f"{bad_corpus / name}.wav" in s]
        assert line.startswith("step 1: skipping") and reason in line and "the run stops above 3" in line
    assert "3 bad training files so far" in said[-1]
    saved = load_checkpoint(bad_corpus / "run" / "checkpoints" / "step_00000003.pt")["data"]["bad_files"]
    assert sorted(Path(p).name for p, _ in saved) == ["has_inf.wav", "has_nan.wav", "vanishes.wav"]


def test_too_many_bad_files_stop_the_run_in_one_line(monkeypatch, capsys, bad_corpus):
    args = overrides(bad_corpus, bad_corpus / "run", 3, "train.batch_size=6", "train.num_workers=1")
    code, _, err = cli(monkeypatch, capsys, args)  # default fraction 0.01 of 6 files: 1 tolerated
    line = one_line_error(code, err, "step 1: 2 of the 6 training files failed to load, more than the 1 "
                                     "tolerated", "train.max_bad_file_fraction")
    assert "has_nan.wav" in line and "has_inf.wav" in line
    assert not (bad_corpus / "run" / "checkpoints").exists()


# ---------------------------------------------------------------- kills during checkpoint writes


def failing_save(fail_on: int, then):
    """A torch.save that writes part of the file and then calls `then()` on its `fail_on`-th call."""
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < fail_on:
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04" + b"\0" * 4096)  # the start of a zip archive, as torch.save begins
        f.flush()
        then()
    return save


def test_a_failed_checkpoint_write_keeps_the_previous_one(env, corpus, straight, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"

    def disk_full():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save(2, disk_full))  # the save at step 4
    with pytest.raises(OSError) as err:
        fit(env, overrides(corpus, run_dir))
    assert str(err.value) == (f"step 4: could not write a checkpoint into {run_dir / 'checkpoints'} (No space left "
                              f"on device); the newest complete checkpoint is {run_dir / 'checkpoints' / 'step_00000002.pt'}")
    monkeypatch.undo()
    assert ckpts(run_dir) == ["step_00000002.pt"]  # no temp file left, step 2 untouched
    assert load_checkpoint(run_dir / "checkpoints" / "step_00000002.pt")["step"] == 2
    resumed = fit(env, overrides(corpus, run_dir))
    assert resumed.step == 4
    assert_same_tensors(straight[1].generator.state_dict(), resumed.generator.state_dict(), "generator")


KILLED_RUN = """
import os, signal, sys, torch
sys.path.insert(0, {tests!r})
from test_fuzz_train import failing_save, fit, overrides
from vocoder.training.distributed import setup
torch.save = failing_save(2, lambda: os.kill(os.getpid(), signal.SIGKILL))
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False  # the arithmetic of the tests (conftest)
fit(setup("cpu"), overrides({corpus!r}, {run_dir!r}))
"""


def test_a_run_killed_while_writing_a_checkpoint_resumes_exactly(env, corpus, straight, tmp_path, capsys):
    run_dir = tmp_path / "run"
    script = KILLED_RUN.format(tests=str(ROOT / "tests"), corpus=str(corpus), run_dir=str(run_dir))
    killed_env = child_env(OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=killed_env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    unfinished = [n for n in ckpts(run_dir) if n != "step_00000002.pt"]
    assert len(unfinished) == 1 and ckpts(run_dir) != unfinished  # step 2, and the temp file of step 4
    assert unfinished[0].startswith(".step_00000004.pt.") and unfinished[0].endswith(".tmp")
    assert load_checkpoint(run_dir / "checkpoints" / "step_00000002.pt")["step"] == 2
    capsys.readouterr()
    resumed = fit(env, overrides(corpus, run_dir))
    out = capsys.readouterr().out
    assert "removed 1 unfinished checkpoint files (0.0 MiB) left by a run that was killed" in out
    assert f"resumed from {run_dir / 'checkpoints' / 'step_00000002.pt'} at step 2" in out
    assert ckpts(run_dir) == ["step_00000002.pt", "step_00000004.pt"]  # the temp file is gone
    assert_same_tensors(straight[1].generator.state_dict(), resumed.generator.state_dict(), "generator")
    assert_same_tensors(straight[1].discriminators.state_dict(), resumed.discriminators.state_dict(), "disc")
