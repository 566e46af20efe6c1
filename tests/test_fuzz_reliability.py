"""The second fuzz round's data-loss and reliability cases (issue 27): what `overwrite=true` may replace,
two runs in one run dir or one output folder, the `.txt`/`.lst` list syntax, a full disk inside
torch.save, validation files too short for the STFT, teacher-forced mel files checked like audio,
`data.val_files` on a small folder, and a linked wav with `data.mel_dir`."""

import logging
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from child_env import child_env
from model_configs import save_tiny_generator
from test_fuzz_infer import cli as infer_cli
from test_fuzz_infer import tree
from test_fuzz_train import cli as train_cli
from test_fuzz_train import failing_save, fit, one_line_error, overrides
from test_train import plain, write_noise

import vocoder.infer as vi
import vocoder.train as vt
from vocoder.atomic import atomic_write
from vocoder.data.mel_pairs import build_mel_pairs
from vocoder.evaluation import WORST
from vocoder.infer_paths import InferError, is_earlier_output
from vocoder.training.distributed import setup
from vocoder.training.run_dir import RunDirInUse, RunDirLock

ROOT = Path(__file__).resolve().parents[1]
SR, HOP, BANDS = 24000, 256, 100

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def env():
    return setup("cpu")


def wav(path: Path, seconds: float = 0.05) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(np.arange(int(seconds * SR)) / 10), SR)
    return path


def mel_file(path: Path, frames: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(frames).standard_normal((BANDS, frames)).astype(np.float32) - 5)
    return path


def infer(checkpoint: Path, **options):
    return vi.run(checkpoint=str(checkpoint), device="cpu", **{k: str(v) if isinstance(v, Path) else v
                                                               for k, v in options.items()})


# ---------------------------------------------------------------- 1. what overwrite=true may replace

def test_overwrite_never_replaces_a_recording_beside_a_single_file_input(monkeypatch, capsys, checkpoint, tmp_path):
    io2 = tmp_path / "io2"
    wav(io2 / "song.wav", 0.08)  # the user's recording
    wav(io2 / "song.flac")  # the input
    before = tree(tmp_path)
    code, err, _ = infer_cli(monkeypatch, capsys, f"checkpoint={checkpoint}", f"input={io2 / 'song.flac'}",
                             f"output={io2}", "overwrite=true", "device=cpu")
    assert code == 2 and len(err) == 1 and "overwrite=true replaces only earlier outputs of vocoder.infer" in err[0]
    assert str(io2 / "song.wav") in err[0] and tree(tmp_path) == before


def test_overwrite_never_replaces_a_recording_beside_a_lists_entries(checkpoint, tmp_path):
    inside = tmp_path / "io5" / "in"
    mel_file(inside / "song.npy")
    wav(inside / "out" / "song.wav", 0.08)  # a recording where the list's output would go
    (inside / "list.txt").write_text("song.npy\n")
    before = tree(tmp_path)
    with pytest.raises(InferError, match=r"replaces only earlier outputs .*out/song\.wav"):
        infer(checkpoint, input=inside / "list.txt", output=inside / "out", overwrite=True)
    assert tree(tmp_path) == before


def test_overwrite_replaces_earlier_outputs_and_the_skip_message_says_which_is_which(checkpoint, tmp_path, capsys):
    mel_file(tmp_path / "in" / "a.npy")
    mel_file(tmp_path / "in" / "b.npy")
    out = tmp_path / "out"
    wav(out / "b.wav", 0.08)  # the user's own file, in the output folder
    users = (out / "b.wav").read_bytes()
    summary = infer(checkpoint, input=tmp_path / "in", output=out)
    assert summary.done == 1 and is_earlier_output(out / "a.wav") and not is_earlier_output(out / "b.wav")
    capsys.readouterr()
    assert len(infer(checkpoint, input=tmp_path / "in", output=out).skipped) == 2
    said = capsys.readouterr().out
    assert f"{out / 'a.wav'} exists (an earlier output: overwrite=true replaces it)" in said
    assert f"{out / 'b.wav'} exists and is not an output of vocoder.infer: kept" in said
    assert said.count("overwrite=true") == 1  # never said of the user's file
    with pytest.raises(InferError, match="b.wav"):  # b.wav is the user's: the run is refused
        infer(checkpoint, input=tmp_path / "in", output=out, overwrite=True)
    (out / "b.wav").rename(tmp_path / "b.wav")
    mel_file(tmp_path / "in" / "a.npy", frames=6)
    assert infer(checkpoint, input=tmp_path / "in", output=out, overwrite=True).done == 2  # a.wav is ours
    assert sf.info(out / "a.wav").frames == 6 * HOP and (tmp_path / "b.wav").read_bytes() == users


# ---------------------------------------------------------------- 2. two inference runs into one output folder

def test_overwrite_false_never_replaces_a_file_created_while_writing(tmp_path):
    target = tmp_path / "x.wav"

    def meanwhile(f):  # another run publishes x.wav while this one writes its temp file
        target.write_bytes(b"the other run's output")
        f.write(b"mine")

    with pytest.raises(FileExistsError):
        atomic_write(target, meanwhile, replace=False)
    assert target.read_bytes() == b"the other run's output" and os.listdir(tmp_path) == ["x.wav"]
    atomic_write(tmp_path / "y.wav", lambda f: f.write(b"new"), replace=False)
    assert (tmp_path / "y.wav").read_bytes() == b"new"


def test_an_output_another_run_wrote_meanwhile_is_skipped_not_failed(checkpoint, tmp_path, monkeypatch, capsys):
    for name in ("a", "b"):
        mel_file(tmp_path / "in" / f"{name}.npy")
    out = tmp_path / "out"
    real_load = vi._Run.load

    def load_then_the_other_run_writes(self, index, job):
        loaded = real_load(self, index, job)
        if job.source.name == "b.npy":  # after this run's existence check, before its write
            out.mkdir(exist_ok=True)
            (out / "b.wav").write_bytes(b"written by the other run")
        return loaded

    monkeypatch.setattr(vi._Run, "load", load_then_the_other_run_writes)
    summary = infer(checkpoint, input=tmp_path / "in", output=out)
    assert summary.done == 1 and not summary.failed and [p.name for p in summary.skipped] == ["b.npy"]
    assert (out / "b.wav").read_bytes() == b"written by the other run"
    assert f"{out / 'b.wav'} was written by another run meanwhile" in capsys.readouterr().out


def test_two_concurrent_inference_runs_into_one_folder(checkpoint, tmp_path):
    for i in range(8):
        mel_file(tmp_path / "in" / f"m{i:02d}.npy", frames=3)
    command = [sys.executable, "-m", "vocoder.infer", f"checkpoint={checkpoint}", f"input={tmp_path / 'in'}",
               f"output={tmp_path / 'out'}", "device=cpu", "batch_size=1", "hydra.run.dir=.",
               "hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    runs = [subprocess.Popen(command, cwd=tmp_path, env=child_env(OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    for code, out, err in results:
        assert code == 0 and "FAILED" not in err and " 0 failed" in out, (code, out[-2000:], err[-2000:])
    written = sorted(os.listdir(tmp_path / "out"))
    assert written == [f"m{i:02d}.wav" for i in range(8)]  # no temp file left, each output whole
    assert all(sf.info(tmp_path / "out" / name).frames == 3 * HOP for name in written)


# ---------------------------------------------------------------- 2. one training run per run dir

HOLD_LOCK = """
import sys
from vocoder.training.run_dir import RunDirLock
lock = RunDirLock(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_training_run_in_a_live_run_dir_is_refused_and_a_killed_one_blocks_nobody(monkeypatch, capsys,
                                                                                           tmp_path):
    corpus, run_dir = tmp_path / "corpus", tmp_path / "run"
    corpus.mkdir()
    for i in range(4):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], env=child_env(), text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = train_cli(monkeypatch, capsys, overrides(corpus, run_dir, 2))
        one_line_error(code, err, f"run_dir {run_dir} is in use by another training run (process {holder.pid} on "
                                  "host ", ", started ", "choose another run_dir")
        assert not (run_dir / "checkpoints").exists()
        assert not (run_dir / "tensorboard").exists()  # the refused run left no event file either
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # kill -9: the lock goes with the process, the file stays
        holder.wait()
    assert (run_dir / "train.lock").is_file()
    lock = RunDirLock(run_dir)  # the file left behind blocks nobody
    assert f"process {os.getpid()} on host" in (run_dir / "train.lock").read_text()
    lock.release()


def test_a_training_run_holds_the_run_dir_lock_while_it_trains(env, tmp_path, monkeypatch):
    corpus, run_dir = tmp_path / "corpus", tmp_path / "run"
    corpus.mkdir()
    for i in range(4):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i)
    import vocoder.training.loop as loop
    real_save, refusals = loop.Trainer.save, []

    def save_and_try_a_second_run(self):
        real_save(self)
        with pytest.raises(RunDirInUse) as refused:  # a second run (another descriptor) while this one trains
            RunDirLock(run_dir)
        refusals.append(str(refused.value))

    monkeypatch.setattr(loop.Trainer, "save", save_and_try_a_second_run)
    fit(env, overrides(corpus, run_dir, 2))
    assert len(refusals) == 1 and f"(process {os.getpid()} on host" in refusals[0]
    RunDirLock(run_dir).release()  # released when the run ended


# ---------------------------------------------------------------- 4 and 11. list syntax, folder entries, duplicates

def test_list_syntax_notes_quoting_and_literal_lists(checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    for name in ("#hash", "pipe|x", "plain"):
        mel_file(folder / f"{name}.npy")
    (folder / "list.txt").write_text('#hash.npy\npipe|x.npy\n"#hash.npy"\n"pipe|x.npy" | its transcript\nplain.npy\n')
    summary = infer(checkpoint, input=folder / "list.txt", output=tmp_path / "out")
    said = capsys.readouterr().out
    assert "note: list.txt line 1: skipped '#hash.npy', a # comment" in said and '"#hash.npy"' in said
    assert "note: list.txt line 2: read 'pipe|x.npy' as the path 'pipe'" in said
    assert "note: list.txt line 4" in said and said.count("note: list.txt") == 3
    assert summary.done == 3 and [p.name for p, _ in summary.failed] == ["pipe"]  # line 2 names 'pipe'
    assert sorted(os.listdir(tmp_path / "out")) == ["#hash.wav", "pipe|x.wav", "plain.wav"]
    (folder / "names.lst").write_text("#hash.npy\npipe|x.npy\n\nplain.npy\n")  # one literal path a line
    summary = infer(checkpoint, input=folder / "names.lst", output=tmp_path / "literal")
    assert summary.done == 3 and not summary.failed and "note:" not in capsys.readouterr().out


def test_a_folder_entry_and_a_file_listed_twice_fail_alone(checkpoint, tmp_path):
    folder = tmp_path / "in"
    mel_file(folder / "a.npy")
    (folder / "list.txt").write_text(f".\n{folder}\na.npy\n./a.npy\n")
    summary = infer(checkpoint, input=folder / "list.txt", output=tmp_path / "out")
    assert summary.done == 1 and len(summary.failed) == 3
    (dot, path, twice) = [reason for _, reason in summary.failed]
    assert dot.startswith("listed at line 1 of list.txt as ") and "a folder, not an audio or mel file" in dot
    assert path.startswith("listed at line 2 of list.txt as ") and "a folder" in path
    assert twice.startswith("the same file is listed twice (line 3 of list.txt, and again at line 4 of list.txt)")
    assert "rename" not in twice


# ---------------------------------------------------------------- 6. a full disk inside torch.save

def test_a_checkpoint_write_failing_inside_torch_save_is_one_line(monkeypatch, capsys, tmp_path):
    corpus, run_dir = tmp_path / "corpus", tmp_path / "run"
    corpus.mkdir()
    for i in range(4):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i)

    def zip_writer_fails():  # what torch.save raises when the disk fills under its zip writer
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4160 vs 4096")

    monkeypatch.setattr(torch, "save", failing_save(2, zip_writer_fails))  # the save at step 4
    code, _, err = train_cli(monkeypatch, capsys, overrides(corpus, run_dir, 4))
    one_line_error(code, err, f"step 4: could not write a checkpoint into {run_dir / 'checkpoints'}",
                   "unexpected pos 4160 vs 4096", "is the disk full?",
                   f"the newest complete checkpoint is {run_dir / 'checkpoints' / 'step_00000002.pt'}")
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["step_00000002.pt"]  # no temp file left


# ---------------------------------------------------------------- 7. validation files too short; save first

def test_a_validation_file_too_short_for_the_stft_is_skipped_at_start_up(env, tmp_path, caplog):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_noise(corpus / "a_short.wav", 300, seed=0)  # one hop and more, under the mel STFT's 385 samples
    write_noise(corpus / "b_long.wav", 7200, seed=1)
    for i in range(4):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i + 2)
    with caplog.at_level(logging.WARNING):
        trainer = fit(env, overrides(corpus, tmp_path / "run", 2, "data.val_files=2", "train.validation_files=2"))
    assert trainer.step == 2 and (tmp_path / "run" / "checkpoints" / "step_00000002.pt").is_file()
    (line,) = [r.getMessage() for r in caplog.records if "a_short.wav" in r.getMessage()]
    assert line.startswith("validation set: skipping") and "too short: 300 samples" in line and "n_fft=1024" in line


def test_the_checkpoint_is_written_before_validation(env, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(5):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i)
    import vocoder.training.loop as loop
    real = loop.Trainer.validate

    def validation_dies_at_step_2(self):
        if self.step == 2:
            raise KeyboardInterrupt  # a user's Ctrl-C, or a crash, during validation
        return real(self)

    monkeypatch.setattr(loop.Trainer, "validate", validation_dies_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        fit(env, overrides(corpus, tmp_path / "run", 2, "data.val_files=1", "train.validation_files=1"))
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["step_00000002.pt"]  # step 2 is not lost


def test_a_silent_generated_validation_file_is_logged_at_the_worst_pesq(env, tmp_path, monkeypatch, caplog):
    """Validation averages as `vocoder.evaluate` does: silent generated audio scores PESQ's worst value,
    it is not left out of the mean (which would then be NaN here, or a mean over the good files)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(5):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i)
    trainer = vt.build_trainer(plain(overrides(corpus, tmp_path / "run", 1, "data.val_files=1",
                                               "train.validation_files=1")), env)
    try:
        monkeypatch.setattr(trainer, "generator", SilentGenerator(trainer.generator))
        with caplog.at_level(logging.WARNING):
            result = trainer.validate()
    finally:
        trainer.log.close()
    assert result["pesq"] == WORST["pesq"] and math.isfinite(result["m_stft"]) and math.isfinite(result["mel_l1"])
    assert any("clip_0.wav" in r.getMessage() and "generated audio is silent" in r.getMessage() for r in caplog.records)


class SilentGenerator(torch.nn.Module):
    """A generator whose output has the right length and no sound."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(self.generator(mel))


# ---------------------------------------------------------------- 8 and 13. teacher-forced mel files

def mel_corpus(folder: Path) -> tuple[Path, Path]:
    """root/{good_0..3, int_mel, nan_mel}.wav (7168 samples = 28 frames) and mels/*.npy of 28 frames."""
    root, mels = folder / "wavs", folder / "mels"
    root.mkdir(parents=True)
    mels.mkdir()
    for i, name in enumerate(["good_0", "good_1", "good_2", "good_3", "int_mel", "nan_mel"]):
        write_noise(root / f"{name}.wav", 28 * HOP, seed=i)
        mel = np.random.default_rng(i).standard_normal((BANDS, 28)).astype(np.float32) - 5
        if name == "int_mel":
            mel = mel.astype(np.int64)
        if name == "nan_mel":
            mel[5, 7] = np.nan
        np.save(mels / f"{name}.npy", mel)
    return root, mels


def test_mel_files_are_checked_like_audio_files(env, tmp_path, caplog):
    root, mels = mel_corpus(tmp_path)
    args = overrides(root, tmp_path / "run", 2, "~model.pitch_source", f"data.mel_dir={mels}", "train.batch_size=5",
                     "train.max_bad_file_fraction=0.3")
    with caplog.at_level(logging.WARNING):
        trainer = fit(env, args)
    assert trainer.step == 2  # the NaN mel is a bad file, not the end of the run
    said = [r.getMessage() for r in caplog.records]
    (start,) = [s for s in said if "int_mel" in s]
    assert start.startswith("training set: skipping") and str(mels / "int_mel.npy") in start
    assert "a mel of integers (int64)" in start
    (bad,) = [s for s in said if "nan_mel" in s]
    assert bad.startswith("step 1: skipping") and str(mels / "nan_mel.npy") in bad and "1 of 2800 mel values are NaN" in bad
    assert list(trainer.bad_files.found) == [str(root / "nan_mel.wav")]


def test_a_linked_wav_under_the_root_finds_its_mel(tmp_path):
    root, mels = tmp_path / "wavs", tmp_path / "mels"
    (root / "spk").mkdir(parents=True)
    (mels / "spk").mkdir(parents=True)
    write_noise(tmp_path / "elsewhere.wav", 8 * HOP)
    (root / "spk" / "linked.wav").symlink_to(tmp_path / "elsewhere.wav")
    np.save(mels / "spk" / "linked.npy", np.zeros((BANDS, 8), np.float32) - 5)
    data = build_mel_pairs([root / "spk" / "linked.wav"], root, mels, BANDS, SR, 4 * HOP, HOP)
    assert data.mels == [mels / "spk" / "linked.npy"] and data[0]["mel"].shape == (BANDS, 4)


# ---------------------------------------------------------------- 9. data.val_files on a small folder

def test_val_files_holding_out_every_file_is_one_clear_line(monkeypatch, capsys, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        write_noise(corpus / f"clip_{i}.wav", 7200, seed=i)
    args = [a for a in overrides(corpus, tmp_path / "run", 2) if not a.startswith("data.val_files")]
    code, _, err = train_cli(monkeypatch, capsys, args)  # data/folder.yaml's default: data.val_files=8
    one_line_error(code, err, f"all 3 audio files under {corpus} would be held out for validation "
                              "(data.val_files=8); lower data.val_files or add files")
