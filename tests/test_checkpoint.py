"""Checkpoints: atomic save, clear load errors, and NVIDIA BigVGAN checkpoints giving NVIDIA's audio."""

import json
from pathlib import Path

import pytest
import torch
from model_configs import flat_config, mel_config, model_config

from vocoder import checkpoint
from vocoder.checkpoint import (CheckpointError, load_checkpoint, load_generator, load_model, save_checkpoint,
                                save_generator)
from vocoder.models import Generator


def nvidia_generator(config: dict, seed: int):
    """NVIDIA's generator (reference activations) with seeded random weights and α/β."""
    bigvgan = pytest.importorskip("bigvgan.bigvgan")
    env = pytest.importorskip("bigvgan.env")
    torch.manual_seed(seed)
    model = bigvgan.BigVGAN(env.AttrDict(dict(config)), use_cuda_kernel=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.add_(0.3 * torch.randn_like(p))
            elif name.endswith("weight_g"):
                p.mul_(1 + 0.2 * torch.rand_like(p))
        model.conv_post.weight_g.mul_(10)  # audio of std ~0.1-0.5 rather than ~0.02: a stricter comparison
    return model


def save_like_nvidia(model, config: dict, folder: Path) -> Path:
    folder.mkdir()
    torch.save({"generator": model.state_dict()}, folder / "bigvgan_generator.pt")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("name,frames,sources", [
    ("bigvgan_v2_24khz_100band_256x", 4, ("folder",)),  # the 112 M models: one load, a short mel
    ("bigvgan_base_24khz_100band", 4, ("file",)),
    ("tiny", 16, ("folder", "file")),
])
def test_nvidia_checkpoint_gives_nvidia_audio(torch_backend, tmp_path, name, frames, sources):
    config = flat_config(name)  # NVIDIA's config.json: generator and mel keys in one dict
    theirs = nvidia_generator(config, seed=len(name))
    folder = save_like_nvidia(theirs, config, tmp_path / name)
    mel = torch.randn(1, config["num_mels"], frames, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = theirs(mel)
    del theirs
    assert expected.std() > 0.05 and (expected.abs() < 0.99).float().mean() > 0.5  # neither silent nor clipped
    for source in sources:
        ours, settings = load_model(folder if source == "folder" else folder / "bigvgan_generator.pt")
        assert settings == mel_config(name) and ours.config == Generator.settings(model_config(name))
        ours.eval()
        with torch.no_grad():
            y = ours(mel)
        del ours
        assert y.shape == (1, 1, frames * config["hop_size"])
        assert (y - expected).abs().max().item() <= 1e-4


def test_nvidia_checkpoint_without_weight_norm(torch_backend, tmp_path):
    config = {**flat_config("tiny"), "upsample_initial_channel": 16}
    theirs = nvidia_generator(config, seed=3)
    mel = torch.randn(1, 100, 4)
    with torch.no_grad():
        expected = theirs(mel)
    theirs.remove_weight_norm()
    ours = load_generator(save_like_nvidia(theirs, config, tmp_path / "plain")).eval()
    with torch.no_grad():
        assert (ours(mel) - expected).abs().max().item() <= 1e-5


def test_fused_path_matches_reference(triton_device, monkeypatch):
    # the tiny config cut to two upsamplings and one AMP block each: the interpreter is slow
    config = {**model_config("tiny"), "upsample_rates": [4, 4], "upsample_kernel_sizes": [8, 8],
              "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]]}
    torch.manual_seed(4)
    model = Generator.from_config(config).eval().to(triton_device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.normal_(0.0, 0.3)
        model.conv_post.parametrizations.weight.original0.mul_(30)  # audible output, not ~0.003
    mel = torch.randn(1, 100, 2, device=triton_device)
    with torch.no_grad():
        fused = model(mel)
        monkeypatch.setenv("VOCODER_BACKEND", "torch")
        reference = model(mel)
    assert reference.std() > 0.05
    assert (fused - reference).abs().max().item() <= 1e-4


def test_round_trip(tmp_path):
    torch.manual_seed(5)
    model = Generator.from_config({**model_config("tiny"), "upsample_initial_channel": 16}).eval()
    mel = torch.randn(1, 100, 3)
    settings = {**mel_config("tiny"), "fmax": 8000}
    save_generator(tmp_path / "g.pt", model, settings)
    state = load_checkpoint(tmp_path / "g.pt")
    assert set(state) == {"generator", "model"} and state["model"] == {"generator": model.config, "mel": settings}
    loaded, loaded_mel = load_model(tmp_path / "g.pt")
    assert loaded.config == model.config and loaded_mel == settings
    with torch.no_grad():
        assert torch.equal(loaded.eval()(mel), model(mel))


def test_a_record_whose_mel_does_not_fit_is_refused(tmp_path):
    model = Generator.from_config({**model_config("tiny"), "upsample_initial_channel": 16})
    save_generator(tmp_path / "g.pt", model, {**mel_config("tiny"), "num_mels": 80})
    with pytest.raises(CheckpointError, match=r"g.pt does not describe a generator and its mel: model.num_mels=100 but mel.num_mels=80"):
        load_model(tmp_path / "g.pt")


def test_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, step=1, weights=torch.ones(3))
    before = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, step=2, weights=torch.zeros(3))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.ones(2), tensor_only)
    with pytest.raises(CheckpointError, match="tensor.pt.*Tensor"):
        load_checkpoint(tensor_only)
    with pytest.raises(FileNotFoundError, match="bigvgan_generator.pt"):
        load_generator(tmp_path)
    no_config = tmp_path / "weights_only.pt"
    torch.save({"generator": {}}, no_config)
    with pytest.raises(CheckpointError, match="config"):
        load_generator(no_config)


def test_mismatched_weights_name_the_keys(tmp_path):
    config = {**model_config("tiny"), "upsample_initial_channel": 16}
    state = Generator.from_config(config).state_dict()
    state.pop("conv_pre.bias")
    state["extra.weight"] = torch.ones(1)
    save_checkpoint(tmp_path / "bad.pt", generator=state,
                    model={"generator": {**config, "upsample_initial_channel": 32}, "mel": mel_config("tiny")})
    with pytest.raises(CheckpointError) as info:
        load_generator(tmp_path / "bad.pt")
    message = str(info.value)
    assert "bad.pt" in message and "missing: conv_pre.bias" in message
    assert "unexpected: extra.weight" in message
    assert "wrong shape: " in message and "conv_pre.parametrizations.weight.original0 (16, 1, 1) (model (32, 1, 1))" in message
