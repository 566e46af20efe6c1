"""Fuzzing `python -m vocoder.infer` with bad files and bad arguments: every problem is one clear line
naming the file or the argument, the exit status says what happened (0 done, 1 a file failed, 2 the
run could not start), nothing prints a traceback, and no input or unrelated file changes."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from child_env import child_env
from model_configs import save_tiny_generator

import vocoder.infer as vi

ROOT = Path(__file__).resolve().parents[1]
SR = 24000
AS_ROOT = os.geteuid() == 0  # root reads files whatever their permissions

pytestmark = pytest.mark.usefixtures("one_thread")


def tree(folder: Path) -> dict[str, str]:
    """Every path under `folder` → the sha256 of its bytes ('dir', or '-> target' for a link)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest() if os.access(path, os.R_OK) else "locked"
    return out


def tone(seconds: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wav = np.stack([0.3 * np.sin(2 * np.pi * (200 + 50 * c) * t) for c in range(channels)], axis=1)
    return wav[:, 0] if channels == 1 else wav


def mel(bands: int = 100, frames: int = 4) -> np.ndarray:
    return np.random.default_rng(frames).standard_normal((bands, frames)).astype(np.float32) - 5


# name → (what to write, the problem its FAILED line must state; None: done)
def bad_files(folder: Path) -> dict[str, str | None]:
    (folder / "x.wav").mkdir(parents=True)  # a folder named like audio: a folder, searched
    np.save(folder / "x.wav" / "inner.npy", mel())
    sf.write(folder / "good.wav", tone(0.06), SR)
    sf.write(folder / "rate.wav", tone(0.06, 16000), 16000)
    sf.write(folder / "stereo.flac", tone(0.06, channels=2), SR)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "garbage.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "riff.wav").write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + bytes(40))
    nan = tone(0.06)
    nan[7] = np.nan
    sf.write(folder / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(folder / "zero.wav", np.zeros(0), SR)
    sf.write(folder / "short.wav", tone(0.002), SR)
    full = folder / "full.wav"
    sf.write(full, tone(0.2), SR)
    (folder / "truncated.wav").write_bytes(full.read_bytes()[:3000])
    full.unlink()
    np.save(folder / "bands.npy", mel(bands=80))
    np.save(folder / "transposed.npy", mel().T.copy())  # [frames, bands]
    np.save(folder / "intmel.npy", np.zeros((100, 4), dtype=np.int64))
    nan_mel = mel()
    nan_mel[3, 2] = np.inf
    np.save(folder / "nanmel.npy", nan_mel)
    np.save(folder / "nomel.npy", np.zeros((100, 0), dtype=np.float32))
    (folder / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "junk_torch.pt").write_bytes(b"not a torch file")
    torch.save({"not": "a mel"}, folder / "dict.pt")
    (folder / "dangling.wav").symlink_to(folder / "gone.wav")
    (folder / "loop.flac").symlink_to(folder / "loop.flac")
    (folder / "notes.txt").write_text("not an input: ignored")
    expected = {
        "good.wav": None, "rate.wav": None, "stereo.flac": None, "truncated.wav": None, "x.wav/inner.npy": None,
        "empty.wav": "cannot read audio", "garbage.wav": "cannot read audio", "riff.wav": "cannot read audio",
        "nan.wav": "NaN or Inf", "zero.wav": "contains no audio samples", "short.wav": "is too short for an STFT",
        "bands.npy": "expected 100 mel bands, found 80", "transposed.npy": "it looks transposed",
        "intmel.npy": "expected a floating-point mel, found torch.int64", "nanmel.npy": "NaN or Inf",
        "nomel.npy": "the mel has no frames", "junk.npy": "cannot read the mel file",
        "junk_torch.pt": "cannot read the mel file", "dict.pt": "holds a dict, not a mel tensor",
        "dangling.wav": "is a dangling symbolic link", "loop.flac": "is a symbolic link loop",
    }
    if not AS_ROOT:
        sf.write(folder / "locked.wav", tone(0.06), SR)
        (folder / "locked.wav").chmod(0)
        expected["locked.wav"] = "cannot read audio"
    return expected


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_bad_files_one_line_each_exit_1_nothing_else_touched(checkpoint, tmp_path):
    expected = bad_files(tmp_path / "in")
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "keep.wav").write_bytes(b"not ours")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "rate.wav").write_bytes(b"an earlier output: kept")
    before = tree(tmp_path)
    env = child_env(OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "vocoder.infer", f"checkpoint={checkpoint}", "input=in",
                           "output=out", "device=cpu"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in log, log
    failed = [line for line in proc.stderr.splitlines() if " FAILED " in line]
    for name, problem in expected.items():
        lines = [line for line in failed if f" FAILED {Path('in') / name}: " in line]
        assert len(lines) == (problem is not None), (name, lines)
        assert problem is None or problem in lines[0], (name, lines)
    assert len(failed) == sum(p is not None for p in expected.values())
    recap = [line for line in proc.stderr.splitlines() if line.startswith("  failed: ")]
    assert len(recap) == len(failed) and len(proc.stderr.splitlines()) == len(failed) + len(recap) + 1  # + WARNING
    (warning,) = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert f"WARNING {Path('in') / 'truncated.wav'}: truncated file?" in warning
    assert "skipped in/rate.wav: out/rate.wav exists" in proc.stdout
    assert "mixed 2 channels down to mono" in proc.stdout
    after = tree(tmp_path)
    new = {k for k in after if k not in before}
    assert {k: after[k] for k in before} == before  # no input, earlier output or unrelated file changed
    assert new == {"out/good.wav", "out/stereo.wav", "out/truncated.wav", "out/x.wav", "out/x.wav/inner.wav"}


def cli(monkeypatch, capsys, *args: str) -> tuple[int, list[str], str]:
    """`python -m vocoder.infer ARGS` in this process: (exit status, stderr lines, stdout)."""
    monkeypatch.setattr(sys, "argv", ["vocoder.infer", *args])
    try:
        vi.cli()
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, checkpoint) -> Path:
    """in/a.npy and in/b.wav, a file where a folder belongs, a corrupt checkpoint, an empty list."""
    root = tmp_path_factory.mktemp("args")
    (root / "in").mkdir()
    np.save(root / "in" / "a.npy", mel())
    sf.write(root / "in" / "b.wav", tone(0.06), SR)
    (root / "a_file").write_text("not a folder")
    (root / "corrupt.pt").write_bytes(b"\x80\x02 not a checkpoint")
    (root / "in" / "list.txt").write_text("\n# only comments\n")
    return root


BAD_ARGUMENTS = [  # (arguments, what the one error line must say)
    (["overwrite=maybe"], "overwrite must be true or false (or yes/no, on/off, 1/0), got 'maybe'"),
    (["overwrite=2"], "overwrite must be true or false"),
    (["batch_size=0"], "batch_size must be a positive integer, got 0"),
    (["batch_size=abc"], "batch_size must be a positive integer, got 'abc'"),
    (["chunk_frames=-1"], "chunk_frames must be a positive integer, got -1"),
    (["chunk_frames=1.5"], "chunk_frames must be a positive integer, got 1.5"),
    (["overlap_frames=-2"], "overlap_frames must be an integer >= 0, got -2"),
    (["progress_every=0"], "progress_every must be a positive integer, got 0"),
    (["channels=both"], "channels must be one of ('mix', 'keep'), got 'both'"),
    (["precision=fp8"], "precision must be one of ('auto', 'fp32', 'tf32', 'bf16', 'fp16'), got 'fp8'"),
    (["device=tpu"], "device must be one of auto, cpu, cuda (or cuda:N), got 'tpu'"),
    (["input=missing"], "input missing does not exist"),
    (["input="], "input must be a path, got ''"),
    (["output="], "output must be a path, got ''"),
    (["input=null"], "input must be a path, got None"),
    (["input=[a,b]"], "input must be a path, got ['a', 'b']"),
    (["input={root}/in/list.txt"], "filelist {root}/in/list.txt is empty"),
    (["output={root}/a_file"], "output {root}/a_file is a file; output must be a folder"),
    (["output={root}/a_file/out"], "output folder {root}/a_file/out is not writable: {root}/a_file is a file"),
    (["input={root}/in/b.wav", "output={root}/in"], "refusing to run: outputs would replace inputs: "
                                                     "{root}/in/b.wav is the input file {root}/in/b.wav"),
    (["checkpoint={root}/nothing.pt"], "checkpoint {root}/nothing.pt does not exist"),
    (["checkpoint={root}/corrupt.pt"], "{root}/corrupt.pt is not a loadable PyTorch checkpoint"),
    (["ouput=x"], "unknown argument 'ouput'; did you mean output?"),
    (["+colour=red"], "unknown argument 'colour'"),
]


@pytest.mark.parametrize("args,message", BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_arguments_one_line_exit_2_nothing_touched(monkeypatch, capsys, workspace, checkpoint, args, message):
    monkeypatch.chdir(workspace)
    before = tree(workspace)
    base = {"checkpoint": str(checkpoint), "input": "in", "output": "out", "device": "cpu"}
    given = [a.replace("{root}", str(workspace)) for a in args]
    for arg in given:
        base.pop(arg.split("=")[0], None)
    code, err, out = cli(monkeypatch, capsys, *[f"{k}={v}" for k, v in base.items()], *given)
    assert code == 2 and len(err) == 1 and err[0].startswith("vocoder.infer: error: "), err
    assert message.replace("{root}", str(workspace)) in err[0] and out == ""
    assert tree(workspace) == before


def test_missing_arguments_and_a_good_run(monkeypatch, capsys, workspace, checkpoint, tmp_path):
    code, err, _ = cli(monkeypatch, capsys, f"checkpoint={checkpoint}")
    assert code == 2 and err == ["vocoder.infer: error: set input=... output=... (usage: python -m vocoder.infer "
                                 "checkpoint=CKPT input=IN output=OUT [key=value ...])"]
    code, err, out = cli(monkeypatch, capsys, f"checkpoint={checkpoint}", f"input={workspace / 'in'}",
                         f"output={tmp_path / 'out'}", "device=cpu", "overwrite=off")
    assert code == 0 and err == [] and "done: 2 of 2 files" in out
