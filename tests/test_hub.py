"""Checkpoints by Hugging Face hub id, against a hub cache laid out in a temp folder (no network):
cache, revisions, a local path winning over an id of the same spelling, one-line errors."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from child_env import child_env
from model_configs import flat_config

from vocoder import Vocoder
from vocoder.hub import HubError, is_hub_id, resolve_checkpoint
from vocoder.infer import run

ROOT = Path(__file__).resolve().parents[1]
TINY = flat_config("tiny")  # NVIDIA's config.json: generator and mel keys in one dict
REPO = "nvidia/bigvgan_tiny_test"
MAIN, OTHER = "a" * 40, "b" * 40  # commits: refs/main → MAIN, refs/v2 → OTHER

pytestmark = pytest.mark.usefixtures("one_thread")


def nvidia_checkpoint(seed: int) -> tuple[dict, torch.nn.Module]:
    """({'generator': state dict}, model): NVIDIA's BigVGAN with random weights, as NVIDIA saves it."""
    bigvgan = pytest.importorskip("bigvgan.bigvgan")
    env = pytest.importorskip("bigvgan.env")
    torch.manual_seed(seed)
    model = bigvgan.BigVGAN(env.AttrDict(dict(TINY)), use_cuda_kernel=False).eval()
    with torch.no_grad():
        model.conv_post.weight_g.mul_(10)  # audible output
    return {"generator": model.state_dict()}, model


def write_snapshot(folder: Path, state: dict | None) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY))
    if state is not None:
        torch.save(state, folder / "bigvgan_generator.pt")


@pytest.fixture(scope="module")
def models():
    """The audio each commit's generator gives for one mel (NVIDIA's code, weight norm folded)."""
    mel = torch.randn(100, 12, generator=torch.Generator().manual_seed(0)) - 5
    out = {}
    for commit, seed in ((MAIN, 1), (OTHER, 2)):
        state, model = nvidia_checkpoint(seed)
        model.remove_weight_norm()
        with torch.no_grad():
            out[commit] = (state, model(mel[None])[0, 0])
    assert (out[MAIN][1] - out[OTHER][1]).abs().max() > 0.05
    return mel, out


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, models) -> Path:
    """HF_HUB_CACHE in tmp_path with REPO at two commits, HF_HUB_OFFLINE=1 (environment and the
    constants huggingface_hub read from it at import)."""
    cache = tmp_path / "hub"
    repo = cache / f"models--{REPO.replace('/', '--')}"
    for commit in (MAIN, OTHER):
        write_snapshot(repo / "snapshots" / commit, models[1][commit][0])
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v2").write_text(OTHER)
    for name, value in (("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", True)):
        monkeypatch.setenv(name, "1" if value is True else value)
        monkeypatch.setattr(huggingface_hub.constants, name, value)
    return cache


def close(voc: Vocoder, models, commit: str) -> bool:
    mel, out = models
    return (voc(mel) - out[commit][1]).abs().max().item() <= 1e-4


def test_hub_ids_and_paths():
    assert is_hub_id("nvidia/bigvgan_v2_24khz_100band_256x") and is_hub_id("a-b/c.d")
    for path in ("runs/demo/checkpoints/step_300.pt", "step.pt", "./nvidia/x", "/abs/x", "~/x/y", "a/b.pt",
                 "nvidia/x.json", "a//b", "a/b/c", "nvidia/a--b", ""):
        assert not is_hub_id(path), path


def test_hub_id_from_the_cache_and_revisions(hub_cache, models):
    voc = Vocoder.from_pretrained(REPO, device="cpu")
    assert close(voc, models, MAIN)
    assert close(Vocoder.from_checkpoint(REPO, device="cpu"), models, MAIN)
    for revision in ("v2", OTHER):  # a branch/tag in refs/, a commit hash
        assert close(Vocoder.from_pretrained(REPO, revision=revision, device="cpu"), models, OTHER)
    assert resolve_checkpoint(REPO) == hub_cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / MAIN


def test_a_local_path_wins(hub_cache, models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_snapshot(tmp_path / REPO, models[1][OTHER][0])  # ./nvidia/bigvgan_tiny_test holds the other weights
    assert resolve_checkpoint(REPO) == Path(REPO)
    assert close(Vocoder.from_pretrained(REPO, device="cpu"), models, OTHER)
    with pytest.raises(ValueError, match=f"revision=v2 applies to hub ids, but {REPO} is a local path"):
        Vocoder.from_pretrained(REPO, revision="v2", device="cpu")


def test_unresolvable_ids_are_one_line(hub_cache, tmp_path, monkeypatch):
    cases = [("nvidia/not_cached", None, "no such local path, not in the Hugging Face cache"),
             (REPO, "v3", "not in the Hugging Face cache")]
    for repo_id, revision, message in cases:
        with pytest.raises(HubError) as e:
            resolve_checkpoint(repo_id, revision)
        text = str(e.value)
        assert message in text and "downloads are off (HF_HUB_OFFLINE=1)" in text and str(hub_cache) in text
        assert f"checkpoint {repo_id} (revision {revision or 'main'})" in text and "\n" not in text
    # a cached snapshot without the weights: says what a BigVGAN repo holds
    write_snapshot(hub_cache / "models--nvidia--config_only" / "snapshots" / MAIN, None)
    (hub_cache / "models--nvidia--config_only" / "refs").mkdir()
    (hub_cache / "models--nvidia--config_only" / "refs" / "main").write_text(MAIN)
    with pytest.raises(HubError, match=r"has no bigvgan_generator.pt \(a BigVGAN repo holds bigvgan_generator.pt and"):
        resolve_checkpoint("nvidia/config_only")
    # a missing file path is not sent to the hub
    with pytest.raises(FileNotFoundError, match="checkpoint runs/x/step_1.pt does not exist"):
        resolve_checkpoint("runs/x/step_1.pt")


def test_an_unreachable_hub_falls_back_to_the_cache(hub_cache, models, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    assert close(Vocoder.from_pretrained(REPO, device="cpu"), models, MAIN)
    with pytest.raises(HubError, match=r"not in the Hugging Face cache .*, and the hub cannot be reached \(\w+.*\)$"):
        resolve_checkpoint("nvidia/not_cached")


def test_infer_with_a_hub_id(hub_cache, models, tmp_path):
    mel, out = models
    (tmp_path / "mels").mkdir()
    torch.save(mel, tmp_path / "mels" / "utt.pt")
    summary = run(checkpoint=REPO, revision="v2", input=str(tmp_path / "mels"), output=str(tmp_path / "wavs"),
                  device="cpu")
    assert summary.done == 1 and (tmp_path / "wavs" / "utt.wav").is_file()
    # the command: an id neither local nor cached is one line on stderr, exit status 2, nothing written
    env = child_env(OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "vocoder.infer", "checkpoint=nvidia/not_cached", "input=mels",
                           "output=out", "device=cpu"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"vocoder.infer: error: checkpoint nvidia/not_cached (revision main): no such local path, not in the "
        f"Hugging Face cache {hub_cache}, and downloads are off (HF_HUB_OFFLINE=1)"]
    assert not (tmp_path / "out").exists()
