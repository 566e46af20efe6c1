"""The shipped configs for tests: model (Generator arguments) and mel settings as plain dicts, the
mel each model was published with, NVIDIA's flat config.json made of the two, and the train config
composed as `python -m vocoder.train` composes it."""

from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import vocoder.train  # noqa: F401  (registers the ${vocoder_data:...} resolver and discriminator/base)

CONFIGS = Path(__file__).resolve().parents[1] / "vocoder" / "configs"

# each model of vocoder/configs/model and the mel settings it was published with (NVIDIA's config.json)
MEL_OF = {
    "bigvgan_v2_22khz_80band_256x": "22khz_80band",
    "bigvgan_v2_22khz_80band_fmax8k_256x": "22khz_80band_fmax8k",
    "bigvgan_v2_24khz_100band_256x": "24khz_100band",
    "bigvgan_v2_44khz_128band_256x": "44khz_128band_256x",
    "bigvgan_v2_44khz_128band_512x": "44khz_128band_512x",
    "bigvgan_22khz_80band": "22khz_80band_fmax8k",
    "bigvgan_24khz_100band": "24khz_100band",
    "bigvgan_base_22khz_80band": "22khz_80band_fmax8k",
    "bigvgan_base_24khz_100band": "24khz_100band",
    "tiny": "24khz_100band",
    "demo": "24khz_100band",
    "hifigan_v1_22khz_80band": "22khz_80band_fmax8k",
    "hifigan_v2_22khz_80band": "22khz_80band_fmax8k",
    "hifigan_v3_22khz_80band": "22khz_80band_fmax8k",
}


def load(group: str, name: str) -> dict:
    return yaml.safe_load((CONFIGS / group / f"{name}.yaml").read_text())


def model_config(name: str) -> dict:
    return load("model", name)


def mel_config(name: str) -> dict:
    """The mel settings of model `name` (MEL_OF)."""
    return load("mel", MEL_OF[name])


def flat_config(name: str) -> dict:
    """Model `name` as a flat BigVGAN config.json: generator arguments and mel settings in one dict."""
    return {**model_config(name), **mel_config(name)}


def compose_train(overrides: list[str], hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=hydra)


def plain_train(overrides: list[str]) -> dict:
    """The resolved train config as `vocoder.train.main` hands it on."""
    return OmegaConf.to_container(compose_train(overrides), resolve=True, throw_on_missing=True)


def save_tiny_generator(path: Path, seed: int = 0) -> Path:
    """A checkpoint of the tiny generator with PyTorch's default init (audible random weights) at `path`."""
    import torch

    from vocoder.checkpoint import save_generator
    from vocoder.models import Generator

    torch.manual_seed(seed)
    save_generator(path, Generator.from_config({**model_config("tiny"), "init": "torch"}), mel_config("tiny"))
    return path
