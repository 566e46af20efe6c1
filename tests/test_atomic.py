"""Atomic writes (`vocoder.atomic`): checkpoints and audio outputs get the same, umask-respecting mode;
a failed write leaves the old file and no temp file; a killed writer's temp file is removed by the
next run (inference outputs and training checkpoints), another live writer's is not."""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from child_env import child_env
from vocoder.atomic import atomic_write, orphan_temp_files, temp_path
from vocoder.audio import save_audio
from vocoder.checkpoint import save_checkpoint
from vocoder.training.run_dir import checkpoint_dir, remove_unfinished

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)
    before = os.umask(0o022)
    yield set_mask
    os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_checkpoints_and_outputs_get_the_mode_of_any_new_file(tmp_path, umask, mask):
    umask(mask)
    save_checkpoint(tmp_path / "step.pt", step=1, weights=torch.zeros(3))
    save_audio(tmp_path / "a.wav", np.zeros(64), 24000)
    (tmp_path / "plain.txt").write_text("as open() makes it")
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(["step.pt", "a.wav", "plain.txt"], 0o666 & ~mask)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "step.pt"
    target.write_bytes(b"the good checkpoint")

    def full_disk(f):
        f.write(b"half of a new checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic_write(target, full_disk)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"the good checkpoint" and os.listdir(tmp_path) == ["step.pt"]
    with pytest.raises(OSError, match=r"step\.pt/x\.wav: File exists"):  # save_audio names the file
        save_audio(tmp_path / "step.pt" / "x.wav", np.zeros(64), 24000)


KILLED_WRITER = """
import sys, time
from vocoder.atomic import atomic_write
def write(f):
    f.write(b"x" * 100_000)
    f.flush()
    print("writing", flush=True)
    time.sleep(120)
atomic_write(sys.argv[1], write)
"""


def test_a_killed_checkpoint_save_is_cleaned_up_by_the_next_run(tmp_path):
    folder = checkpoint_dir(tmp_path)
    folder.mkdir()
    (folder / "step_00000005.pt").write_bytes(b"an earlier checkpoint")
    env = child_env()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(folder / "step_00000010.pt")],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "writing\n"
        (leftover,) = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert leftover.name.startswith(".step_00000010.pt.") and leftover.stat().st_size == 100_000
        assert remove_unfinished(tmp_path) == (0, 0)  # its writer is alive: another run's file in progress
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert leftover.exists()  # a kill runs no cleanup
    assert remove_unfinished(tmp_path) == (1, 100_000)
    assert os.listdir(folder) == ["step_00000005.pt"]


def test_only_this_hosts_dead_writers_temp_files_are_orphans(tmp_path):
    mine = temp_path(tmp_path / "a.wav")
    assert mine.parent == tmp_path and mine.name.startswith(".a.wav.") and mine.name.endswith(".tmp")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    other_host = tmp_path / f".a.wav.{'f' * 8}-{dead.pid}-{'0' * 8}.tmp"
    for path in (mine, orphan, other_host, tmp_path / ".a.wav.abcdefgh.tmp"):
        path.write_bytes(b"")
    assert orphan_temp_files(tmp_path) == [orphan]
    assert orphan_temp_files(tmp_path, ".wav") == [orphan] and orphan_temp_files(tmp_path, ".pt") == []
