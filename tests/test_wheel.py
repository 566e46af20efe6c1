"""A non-editable install works from any folder: the wheel ships the configs and the demo corpus,
and `python -m vocoder.train` / `vocoder.infer` run from outside the checkout.

The wheel is built from a copy of the package sources in a temp dir (nothing is written into the
checkout), installed into a temp target folder that reuses the current environment's packages, and
run from another temp folder with only that target on PYTHONPATH. About 40 s on 2 CPU cores; it is
the one test of what a user gets from `pip install`, so it runs in CI.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "vocoder")
SMALL = ["train.device=cpu", "train.max_steps=2", "train.checkpoint_interval=2", "data.segment_size=4096",
         "train.batch_size=2", "train.num_workers=0", "train.validation_files=1"]


def run(args: list[str], cwd: Path, target: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VOCODER_BACKEND", "TRITON_INTERPRET")}
    env.update(PYTHONPATH=str(target), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(the wheel, the folder it is installed into, an empty folder outside the checkout to run in)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (base / "dist").glob("vocoder-*.whl")
    target = base / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    work = base / "work"
    work.mkdir()
    return wheel, target, work


def test_the_wheel_ships_every_config(installed):
    wheel, target, work = installed
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("vocoder/configs/")}
    source = {str(p.relative_to(ROOT)) for p in (ROOT / "vocoder" / "configs").rglob("*.yaml")}
    assert source and shipped == source
    probe = run(["-c", "import importlib.util; print(importlib.util.find_spec('vocoder').origin)"], work, target)
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).is_relative_to(target)  # the installed copy, not the checkout's


def test_cfg_job_from_outside_the_checkout(installed):
    _, target, work = installed
    result = run(["-m", "vocoder.train", "+experiment=libritts", "--cfg", "job"], work, target)
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = yaml.safe_load(result.stdout)
    assert cfg["experiment_name"] == "libritts_bigvgan_v2_24khz" and cfg["data"]["root"] == "???"
    assert cfg["model"]["upsample_initial_channel"] == 1536 and cfg["mel"]["sampling_rate"] == 24000
    assert cfg["discriminator"]["cqtd_filters"] == 128 and cfg["discriminator"]["cqtd_hop_lengths"] == [512, 256, 256]


def test_demo_train_and_infer_from_outside_the_checkout(installed):
    _, target, work = installed
    train = run(["-m", "vocoder.train", "+experiment=demo", *SMALL], work, target)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    checkpoint = Path("runs/demo/checkpoints/step_00000002.pt")
    assert f"checkpoints in {checkpoint.parent}" in train.stdout and (work / checkpoint).is_file()
    pretrained = target / "vocoder" / "data" / "demo_pretrained.pt"  # the demo's starting point ships too
    assert f"training from the generator of {pretrained}" in train.stdout
    clip = target / "vocoder" / "data" / "demo" / "awb_000.flac"  # the corpus ships in the wheel too
    infer = run(["-m", "vocoder.infer", f"checkpoint={checkpoint}", f"input={clip}", "output=out",
                 "device=cpu"], work, target)
    assert infer.returncode == 0, infer.stdout[-3000:] + infer.stderr[-3000:]
    assert "done: 1 of 1 files" in infer.stdout
    info, source = sf.info(work / "out" / "awb_000.wav"), sf.info(clip)
    assert info.samplerate == 24000 and abs(info.frames - source.frames * 24000 / source.samplerate) < 256
