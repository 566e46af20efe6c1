"""Booleans are parsed strictly everywhere (`overwrite=no`, `train.resume=no` mean no; `maybe` is an
error naming the key): `vocoder.booleans.parse_bool`, and every yes/no key of the shipped configs."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import vocoder.train  # noqa: F401  (registers discriminator/base and the vocoder_data resolver)
from vocoder.booleans import parse_bool
from vocoder.evaluate import EvaluateError
from vocoder.evaluate import run as evaluate
from vocoder.export import run as export
from vocoder.infer import run
from vocoder.models import Generator, build_discriminators
from vocoder.training.loop import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "vocoder" / "configs"


@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False), ("YES", True),
    ("no", False), (" on ", True), ("off", False), ("1", True), ("0", False)])
def test_the_accepted_words(value, expected):
    assert parse_bool(value, "x") is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", "-1", "nope", "t", 2, -1, 1.0, 0.0, None, [], "yes please"])
def test_anything_else_is_an_error_naming_the_key(value):
    with pytest.raises(ValueError, match=r"^train\.resume must be true or false .*got " + repr(value).replace(
            "[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_bool(value, "train.resume")


def _bool_keys() -> dict[str, set[str]]:
    """{config group: its keys whose shipped value is a yes/no} over every yaml in configs/."""
    found: dict[str, set[str]] = {}
    for path in CONFIGS.rglob("*.yaml"):
        group = path.parent.name if path.parent != CONFIGS else path.stem
        data = yaml.safe_load(path.read_text()) or {}
        if group in ("train", "experiment"):
            data = data.get("train") or {}
            group = "train"
        found.setdefault(group, set()).update(k for k, v in data.items() if isinstance(v, bool))
    return {g: keys for g, keys in found.items() if keys}


TINY = yaml.safe_load((CONFIGS / "model" / "tiny.yaml").read_text())
DISCRIMINATOR = yaml.safe_load((CONFIGS / "discriminator" / "tiny.yaml").read_text())
DISCRIMINATOR.pop("defaults", None)  # the group's files extend discriminator/base (Hydra's defaults list)
CONSUMERS = {  # group → how a value of key reaches the code that uses it, returning the parsed value
    "train": lambda key, value: getattr(TrainOptions(**{key: value}), key),
    "model": lambda key, value: Generator.from_config({**TINY, key: value}).config[key],
    "discriminator": lambda key, value: sorted(build_discriminators({**DISCRIMINATOR, key: value}, 24000)),
    "infer": lambda key, value: run("no-checkpoint", "no-input", "no-output", **{key: value}),
    "evaluate": lambda key, value: evaluate("no-output", reference="no-ref", generated="no-gen", **{key: value}),
    "export": lambda key, value: export("no-checkpoint", "no-output.onnx", **{key: value}),
}


def test_every_yes_no_key_of_the_configs_is_parsed_strictly():
    keys = _bool_keys()
    assert set(keys) <= set(CONSUMERS), f"a config group with booleans nobody checks: {set(keys) - set(CONSUMERS)}"
    assert {"resume", "activation_checkpointing", "cudnn_benchmark"} <= keys["train"]
    assert keys["infer"] == {"overwrite", "cudnn_benchmark"} and keys["evaluate"] == {"overwrite"}
    assert keys["export"] == {"overwrite"}
    assert {"snake_logscale", "use_tanh_at_final"} <= keys["model"]
    for group, names in keys.items():
        for key in names:
            with pytest.raises((ValueError, EvaluateError), match=rf"{key} must be true or false.*got 'maybe'"):
                CONSUMERS[group](key, "maybe")
    assert TrainOptions(resume="no").resume is False and TrainOptions(resume="on").resume is True
    assert Generator.from_config({**TINY, "use_tanh_at_final": "yes"}).use_tanh_at_final is True
    assert CONSUMERS["discriminator"]("use_cqtd_instead_of_mrd", "off") == ["mpd", "mrd"]
    assert CONSUMERS["discriminator"]("use_cqtd_instead_of_mrd", "on") == ["cqtd", "mpd"]


def test_train_resume_no_from_the_command_line_means_no():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=demo", "train.resume=no"])
    train = OmegaConf.to_container(cfg.train, resolve=True)
    assert train["resume"] == "no"  # Hydra hands over the word; TrainOptions must not take it for true
    assert TrainOptions(**train).resume is False
