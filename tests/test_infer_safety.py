"""`vocoder.infer` loses nothing: outputs stay inside `output`, inputs are never replaced, booleans are
strict, a full disk stops with the file named, checks come first, a killed run's temp files go, and
broken links and truncated files are reported (issue 13, "Data loss in vocoder.infer")."""

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model_configs import save_tiny_generator

import vocoder.audio.io as audio_io
from vocoder.atomic import temp_path
from vocoder.infer import run
from vocoder.infer_paths import OUTSIDE, InferError, find_inputs, output_path, plan_jobs

ROOT = Path(__file__).resolve().parents[1]
SR = 24000

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def mel_file(path: Path, frames: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, (torch.randn(100, frames, generator=torch.Generator().manual_seed(frames)) - 5).numpy())
    return path


def wav_file(path: Path, seconds: float = 0.05) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(np.arange(int(seconds * SR)) / 10), SR)
    return path


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (links as their target text) → a hash of its bytes."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(folder))] = "-> " + os.readlink(path)
        elif path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def infer(checkpoint: Path, **options):
    return run(checkpoint=str(checkpoint), device="cpu", **{k: str(v) if isinstance(v, Path) else v
                                                            for k, v in options.items()})


# ---------------------------------------------------------------- 1. outputs inside `output`

def test_list_entries_outside_the_list_folder_stay_inside_output(checkpoint, tmp_path):
    mel_file(tmp_path / "lists" / "sub" / "in.npy")
    mel_file(tmp_path / "D" / "song.npy")
    mel_file(tmp_path / "E" / "x.npy")
    (tmp_path / "D" / "song.wav").write_bytes(b"an unrelated recording")
    listing = tmp_path / "lists" / "list.txt"
    listing.write_text(f"sub/in.npy\n../D/song.npy\n{tmp_path / 'E' / 'x.npy'}\n/nonexistent/m.wav\n"
                       "sub/../sub/in.npy\n")
    before = tree(tmp_path)
    out = tmp_path / "lists" / "out"
    summary = infer(checkpoint, input=listing, output=out, overwrite=True)
    outside = out / OUTSIDE / tmp_path.relative_to(tmp_path.anchor)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))
    assert written == sorted([str((outside / "D" / "song.wav").relative_to(out)),
                              str((outside / "E" / "x.wav").relative_to(out)), "sub/in.wav"])
    assert summary.done == 3 and [p.name for p, _ in summary.failed] == ["m.wav", "in.npy"]
    assert summary.failed[1][1].startswith("the same file is listed twice (line 1 of list.txt, and again at line 5 "
                                           "of list.txt)")  # sub/../sub/in.npy is sub/in.npy
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("lists/out/")} == before


def test_output_layout_never_leaves_output(tmp_path):
    out = tmp_path / "out"
    root = tmp_path / "in"
    assert output_path(root / "a" / ".." / "b.flac", root, out) == out / "b.wav"
    assert output_path(root / ".." / ".." / "x.npy", root, out) == out / OUTSIDE / Path(
        os.path.normpath(tmp_path.parent / "x.wav")).relative_to(tmp_path.anchor)
    assert output_path(Path("/x.npy"), root, out) == out / OUTSIDE / "x.wav"
    # a link inside the output folder to a folder elsewhere: that output is refused, not written there
    (tmp_path / "elsewhere").mkdir()
    out.mkdir()
    (out / "sub").symlink_to(tmp_path / "elsewhere")
    mel_file(root / "sub" / "a.npy")
    mel_file(root / "b.npy")
    jobs = plan_jobs(find_inputs(root), out)
    assert [(j.source.name, j.error is None) for j in jobs] == [("b.npy", True), ("a.npy", False)]
    assert "through a symbolic link" in jobs[1].error and "outside the output folder" in jobs[1].error


# ---------------------------------------------------------------- 2. inputs under `input` are never replaced

def test_output_inside_input_never_replaces_recordings(checkpoint, tmp_path, capsys):
    wav_file(tmp_path / "in" / "a.wav")
    wav_file(tmp_path / "in" / "sub" / "a.wav", 0.08)  # a recording, in what will be the output folder
    before = tree(tmp_path)
    with pytest.raises(InferError, match=r"overwrite=true replaces only earlier outputs of vocoder.infer, .*sub/a\.wav"):
        infer(checkpoint, input=tmp_path / "in", output=tmp_path / "in" / "sub", overwrite=True)
    assert tree(tmp_path) == before
    summary = infer(checkpoint, input=tmp_path / "in", output=tmp_path / "in" / "sub")  # overwrite=false
    assert summary.total == 1 and len(summary.skipped) == 1 and tree(tmp_path) == before
    assert "note: 1 audio/mel files under the output folder" in capsys.readouterr().out


# ---------------------------------------------------------------- 3. strict booleans

def test_overwrite_is_parsed_strictly(checkpoint, tmp_path):
    mel_file(tmp_path / "in" / "a.npy", frames=2)
    assert infer(checkpoint, input=tmp_path / "in", output=tmp_path / "out").done == 1  # an earlier output
    kept = (tmp_path / "out" / "a.wav").read_bytes()
    mel_file(tmp_path / "in" / "a.npy")
    for no in ("no", "off", "false", "False", "0", 0, False):
        summary = infer(checkpoint, input=tmp_path / "in", output=tmp_path / "out", overwrite=no)
        assert len(summary.skipped) == 1 and (tmp_path / "out" / "a.wav").read_bytes() == kept
    for bad in ("maybe", "", "2", 2, 1.0, None):
        with pytest.raises(ValueError, match="overwrite must be true or false"):
            infer(checkpoint, input=tmp_path / "in", output=tmp_path / "out", overwrite=bad)
    assert infer(checkpoint, input=tmp_path / "in", output=tmp_path / "out", overwrite="YES").done == 1
    assert sf.info(tmp_path / "out" / "a.wav").frames == 4 * 256


# ---------------------------------------------------------------- 4. a full disk

def test_full_disk_stops_the_run_naming_the_file_and_keeps_what_was_written(checkpoint, tmp_path, monkeypatch,
                                                                            capsys):
    for name in ("a", "b", "c"):
        mel_file(tmp_path / "in" / f"{name}.npy")
    real = audio_io.atomic_write

    def disk_fills_at_b(path, write, **options):
        if Path(path).name != "b.wav":
            return real(path, write, **options)

        def half(f):  # part of the file reaches the disk, then the disk is full
            f.write(b"RIFF....WAVE")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, half, **options)

    monkeypatch.setattr(audio_io, "atomic_write", disk_fills_at_b)
    out = tmp_path / "out"
    summary = infer(checkpoint, input=tmp_path / "in", output=out, batch_size=1)
    assert summary.stopped == f"disk full writing {out / 'b.wav'}" and summary.not_attempted == 1
    assert summary.done == 1 and sorted(os.listdir(out)) == ["a.wav"]  # no temp file, nothing of b or c
    assert sf.info(out / "a.wav").frames == 4 * 256
    captured = capsys.readouterr()
    assert f"FAILED {tmp_path / 'in' / 'b.npy'}: disk full writing {out / 'b.wav'}" in captured.err
    assert "stopped: disk full writing" in captured.out and "1 files not attempted" in captured.out


def test_a_write_error_inside_soundfile_fails_that_file_only(checkpoint, tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        mel_file(tmp_path / "in" / f"{name}.npy")
    real, calls = audio_io.sf.SoundFile.write, []

    def short_write(*args, **kwargs):  # what soundfile does when libsndfile writes fewer frames
        calls.append(1)
        if len(calls) == 2:
            raise AssertionError
        return real(*args, **kwargs)

    monkeypatch.setattr(audio_io.sf.SoundFile, "write", short_write)
    summary = infer(checkpoint, input=tmp_path / "in", output=tmp_path / "out", batch_size=1)
    assert summary.done == 2 and [(p.name, r) for p, r in summary.failed] == [
        ("b.npy", f"cannot write {tmp_path / 'out' / 'b.wav'}: AssertionError")]
    assert sorted(os.listdir(tmp_path / "out")) == ["a.wav", "c.wav"]


# ---------------------------------------------------------------- 5. checks first; a killed run's temp files

def test_an_unusable_output_folder_is_refused_before_loading_the_model(checkpoint, tmp_path, monkeypatch):
    mel_file(tmp_path / "in" / "a.npy")
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr("vocoder.infer.Vocoder.from_checkpoint",
                        lambda *a, **k: pytest.fail("the model was loaded before the output folder was checked"))
    before = tree(tmp_path)
    with pytest.raises(InferError, match=r"output folder .*file/out/sub is not writable: .*file is a file"):
        infer(checkpoint, input=tmp_path / "in", output=tmp_path / "file" / "out" / "sub")
    assert tree(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["file", "in"]
    if os.geteuid() != 0:  # root writes to read-only folders
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(InferError, match="locked is not writable: Permission denied"):
            infer(checkpoint, input=tmp_path / "in", output=tmp_path / "locked")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temp_files_are_removed_and_others_kept(checkpoint, tmp_path, capsys):
    mel_file(tmp_path / "in" / "a.npy")
    out = tmp_path / "out"
    out.mkdir()
    ours = temp_path(out / "a.wav")
    orphan = ours.with_name(ours.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-"))
    orphan.write_bytes(b"x" * 4096)
    live = temp_path(out / "b.wav")  # this process is alive: another run's file in progress
    live.write_bytes(b"y")
    foreign = [out / ".notes.tmp", out / f".a.wav.{'0' * 8}-1-{'0' * 8}.tmp", out / ".a.wav.k3j2h1g0.tmp"]
    for path in foreign:
        path.write_bytes(b"not ours")
    summary = infer(checkpoint, input=tmp_path / "in", output=out)
    assert summary.done == 1 and not orphan.exists() and live.exists() and all(p.exists() for p in foreign)
    assert "removed 1 unfinished output files (0.0 MiB) left by a run that was killed" in capsys.readouterr().out


# ---------------------------------------------------------------- 6. links and truncated files

def test_dangling_links_and_link_loops_are_reported(checkpoint, tmp_path):
    inp = tmp_path / "in"
    mel_file(inp / "good.npy")
    mel_file(tmp_path / "other" / "linked.npy")
    (inp / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (inp / "loop.wav").symlink_to(inp / "loop.wav")
    (inp / "sub").mkdir()
    (inp / "sub" / "up").symlink_to(inp)  # a folder link back up: searched once, reported as a loop
    (inp / "more").symlink_to(tmp_path / "other")  # a link to a folder: followed
    (inp / "notes").symlink_to(tmp_path / "nothing")  # not audio: ignored
    summary = infer(checkpoint, input=inp, output=tmp_path / "out")
    assert summary.done == 2 and sorted(p.name for p in (tmp_path / "out").rglob("*.wav")) == ["good.wav", "linked.wav"]
    failed = {str(p.relative_to(inp)): r for p, r in summary.failed}
    assert failed.keys() == {"dangling.wav", "loop.wav", "sub/up"}
    assert failed["dangling.wav"].startswith(f"is a dangling symbolic link (to {tmp_path / 'nowhere.wav'}")
    assert "symbolic link loop" in failed["loop.wav"] and "symbolic link loop" in failed["sub/up"]
    # a list entry that is a dangling link says so too
    (tmp_path / "list.txt").write_text("in/dangling.wav\n")
    summary = infer(checkpoint, input=tmp_path / "list.txt", output=tmp_path / "out2")
    assert "dangling symbolic link" in summary.failed[0][1]


def test_a_truncated_wav_is_used_with_a_warning(checkpoint, tmp_path, capsys):
    wav_file(tmp_path / "full.wav", 0.2)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.wav").write_bytes(data[:len(data) // 2])  # header: 4800 frames, data: ~2378
    summary = infer(checkpoint, input=tmp_path / "in", output=tmp_path / "out")
    assert summary.done == 1 and not summary.failed
    err = capsys.readouterr().err
    assert f"WARNING {tmp_path / 'in' / 'cut.wav'}: truncated file? its header declares 4800 frames (0.20 s)" in err
    assert sf.info(tmp_path / "out" / "cut.wav").frames == (len(data) // 2 - 44) // 2 // 256 * 256
