"""Fuzzing what the three entry points read: audio files declaring absurd sample rates (refused per file,
before their samples are read, in inference, evaluation and training alike) and checkpoint files of
other kinds (a config.json, pickled code, safetensors: said what they are; safetensors weights load)."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from model_configs import save_tiny_generator

import vocoder.infer as vi
from vocoder import Vocoder
from vocoder.audio import AudioError, load_audio
from vocoder.checkpoint import CheckpointError, load_model, save_generator
from vocoder.data import build_dataset
from vocoder.evaluation import Pair, score_files

SR = 24000

pytestmark = pytest.mark.usefixtures("one_thread")


def tone(samples: int, rate: int = SR) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(samples) / rate)).astype(np.float32)


@pytest.fixture(scope="module")
def odd_rates(tmp_path_factory) -> Path:
    """good.wav, one_hz.wav (200 samples declared at 1 Hz: 200 s), coprime.wav (44101 Hz, whose
    resampling to 24 kHz would take a filter of 4 GiB)."""
    folder = tmp_path_factory.mktemp("rates")
    sf.write(folder / "good.wav", tone(4800), SR)
    sf.write(folder / "one_hz.wav", tone(200, 8), 1, subtype="PCM_16")
    sf.write(folder / "coprime.wav", tone(4410, 44101), 44101)
    return folder


RATE_PROBLEMS = {"one_hz.wav": "its header declares a sample rate of 1 Hz, below 1000 Hz",
                 "coprime.wav": "its sample rate 44101 Hz shares no common factor with 24000 Hz"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_load_audio_refuses_absurd_rates_and_lengths_before_reading(odd_rates):
    for name, problem in RATE_PROBLEMS.items():
        with pytest.raises(AudioError, match=f"^{odd_rates / name}: {problem}"):
            load_audio(odd_rates / name, SR)
    wav, _ = load_audio(odd_rates / "good.wav", 22050)
    assert wav.shape == (4410,)
    with pytest.raises(AudioError, match=r"0.2 s of audio at its declared 24000 Hz, over the limit of 0.1 s for one"):
        load_audio(odd_rates / "good.wav", SR, max_seconds=0.1)


def test_infer_fails_those_files_alone(odd_rates, checkpoint, tmp_path, capsys):
    summary = vi.run(checkpoint=str(checkpoint), input=str(odd_rates), output=str(tmp_path / "out"), device="cpu")
    err = capsys.readouterr().err
    assert summary.done == 1 and {p.name for p, _ in summary.failed} == set(RATE_PROBLEMS)
    for name, problem in RATE_PROBLEMS.items():
        assert f"FAILED {odd_rates / name}: {problem}" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.wav"]


def test_evaluate_fails_those_pairs_alone(odd_rates, checkpoint):
    voc = Vocoder.from_checkpoint(checkpoint, device="cpu")
    good = odd_rates / "good.wav"
    pairs = [Pair("good", good, good), *(Pair(name, good, odd_rates / name) for name in RATE_PROBLEMS)]
    scores = score_files(pairs, voc.mel, ["mel_l1"])
    assert scores.names == ["good"]
    for name, problem in RATE_PROBLEMS.items():
        assert problem in scores.failed[name]


def test_training_skips_those_files_at_start_up(odd_rates, caplog):
    """The start-up header scan applies `load_audio`'s rate checks: such a file is skipped there with
    one warning line, not first met (and skipped) when a batch loads it."""
    files = [odd_rates / "one_hz.wav", odd_rates / "coprime.wav", odd_rates / "good.wav"]
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset(files, SR, 1024, 256, train=True, seed=0, name="training set")
    assert dataset.files == [odd_rates / "good.wav"]
    for name, problem in RATE_PROBLEMS.items():
        (line,) = [r.getMessage() for r in caplog.records if name in r.getMessage()]
        assert line.startswith(f"training set: skipping {odd_rates / name}: {problem}") and "\n" not in line
    item = dataset[0]
    assert item["path"] == str(odd_rates / "good.wav") and item["audio"].shape == (1024,) and not item["skipped"]


# ---------------------------------------------------------------- checkpoint files of other kinds


class _Code:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_a_config_json_or_an_empty_file_is_named_for_what_it_is(checkpoint, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_mels": 100}))
    with pytest.raises(CheckpointError, match=r"config\.json is a JSON file \(a model config\.json\?\), not a "
                                              r"checkpoint; accepted: a PyTorch checkpoint .* a \.safetensors file"):
        load_model(config)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt is an empty file, not a checkpoint; accepted"):
        load_model(tmp_path / "empty.pt")


def test_pickled_code_is_refused_without_advice_to_run_it(tmp_path):
    path = tmp_path / "code.pt"
    torch.save({"generator": _Code()}, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert "is not a loadable PyTorch checkpoint: it holds pickled Python code (" in message
    assert "system), which is never run here" in message
    assert "weights_only" not in message and "likely succeed" not in message and "\n" not in message


def test_safetensors_generator_weights_load_and_vocode_alike(checkpoint, tmp_path):
    generator, mel = load_model(checkpoint)
    save_generator(tmp_path / "tiny.safetensors", generator, mel)
    mels = torch.randn(100, 12) - 5
    expected = Vocoder.from_checkpoint(checkpoint, device="cpu")(mels)
    assert torch.equal(Vocoder.from_checkpoint(tmp_path / "tiny.safetensors", device="cpu")(mels), expected)
    # weights alone (as other tools write them), the model's config.json beside them
    beside = tmp_path / "release"
    beside.mkdir()
    state = torch.load(checkpoint, weights_only=True)["generator"]
    save_file({f"generator.{k}": v.contiguous() for k, v in state.items()}, beside / "model.safetensors")
    (beside / "config.json").write_text(json.dumps({**generator.config, **mel}))
    assert torch.equal(Vocoder.from_checkpoint(beside / "model.safetensors", device="cpu")(mels), expected)
    (beside / "config.json").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors holds no model config and there is no config.json"):
        load_model(beside / "model.safetensors")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes((tmp_path / "tiny.safetensors").read_bytes()[:3000])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors is a safetensors file that cannot be read"):
        load_model(truncated)


def infer_with(monkeypatch, capsys, checkpoint: Path, folder: Path) -> tuple[int, list[str]]:
    """`python -m vocoder.infer checkpoint=CHECKPOINT` on one short wav, in this process: (status, stderr lines)."""
    sf.write(folder / "a.wav", tone(4800), SR)
    monkeypatch.setattr("sys.argv", ["vocoder.infer", f"checkpoint={checkpoint}", f"input={folder / 'a.wav'}",
                                     f"output={folder / 'out'}", "device=cpu"])
    with pytest.raises(SystemExit) as done:
        vi.cli()
    return done.value.code, capsys.readouterr().err.splitlines()


def test_infer_names_a_config_json_in_one_line(monkeypatch, capsys, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    code, err = infer_with(monkeypatch, capsys, tmp_path / "config.json", tmp_path)
    assert code == 2 and len(err) == 1 and "config.json is a JSON file" in err[0], err


def test_weights_that_do_not_fit_are_one_line(monkeypatch, capsys, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    del state["generator"]["conv_pre.bias"]
    state["generator"]["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "mismatch.pt")
    code, err = infer_with(monkeypatch, capsys, tmp_path / "mismatch.pt", tmp_path)
    assert code == 2 and err == [f"vocoder.infer: error: {tmp_path / 'mismatch.pt'} does not match the model "
                                 "config: missing: conv_pre.bias; unexpected: extra.weight"], err
