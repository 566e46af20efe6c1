"""Layers and the Vocoder refuse what they cannot use: Snake, SnakeBeta, their functional ops and
AntiAliasActivation1d on a non-floating tensor (TypeError naming the dtype) or a numpy array;
`Vocoder.resynthesize` scales integer PCM to [-1, 1] and refuses other non-float types."""

import numpy as np
import pytest
import torch
from pathlib import Path

from model_configs import mel_config, model_config

from vocoder import Vocoder
from vocoder.kernels import anti_alias_activation, snake, snake_beta
from vocoder.layers import AntiAliasActivation1d, Snake, SnakeBeta
from vocoder.models import Generator

ROOT = Path(__file__).resolve().parents[1]
TINY, TINY_MEL = model_config("tiny"), mel_config("tiny")
ALPHA = torch.ones(4)
FILTER = torch.ones(12) / 12
CALLS = {
    "Snake": Snake(4),
    "SnakeBeta": SnakeBeta(4, logscale=True),
    "AntiAliasActivation1d": AntiAliasActivation1d(SnakeBeta(4)),
    "Snake(impl=eager)": Snake(4, impl="eager"),
    "SnakeBeta(impl=eager)": SnakeBeta(4, impl="eager"),
    "AntiAliasActivation1d(impl=eager)": AntiAliasActivation1d(SnakeBeta(4), impl="eager"),
    "snake": lambda x: snake(x, ALPHA),
    "snake_beta": lambda x: snake_beta(x, ALPHA, ALPHA),
    "anti_alias_activation": lambda x: anti_alias_activation(x, FILTER, FILTER, ALPHA, ALPHA),
}


@pytest.mark.parametrize("dtype", [torch.int64, torch.int16, torch.uint8, torch.bool, torch.complex64])
@pytest.mark.parametrize("name", CALLS)
def test_non_floating_tensors_are_refused_naming_the_dtype(name, dtype):
    x = torch.ones(2, 4, 32, dtype=dtype)
    with pytest.raises(TypeError, match=rf"expected a floating-point tensor .*got {dtype}"):
        CALLS[name](x)


@pytest.mark.parametrize("name", CALLS)
def test_numpy_input_is_refused_with_a_hint(name):
    with pytest.raises(TypeError, match=r"expected a torch\.Tensor, got a numpy\.ndarray \(torch\.from_numpy"):
        CALLS[name](np.ones((2, 4, 32), dtype=np.float32))
    with pytest.raises(TypeError, match="expected a torch.Tensor, got a list"):
        CALLS[name]([[1.0]])


@pytest.mark.parametrize("name", CALLS)
def test_floating_tensors_still_work(name):
    x = torch.randn(2, 4, 32)
    assert CALLS[name](x).dtype == torch.float32
    assert CALLS[name](x.double()).dtype == torch.float64


@pytest.fixture(scope="module")
def voc() -> Vocoder:
    torch.manual_seed(0)
    return Vocoder(Generator.from_config({**TINY, "init": "torch"}), TINY_MEL, device="cpu")


def test_resynthesize_scales_integer_pcm(voc):
    wav = torch.sin(torch.arange(2048) / 7) * 0.5
    pcm16 = torch.round(wav * 32767).to(torch.int16)
    expected = voc.resynthesize(pcm16.float() / 32768, 24000)
    assert torch.equal(voc.resynthesize(pcm16, 24000), expected)
    assert expected.abs().max() > 1e-3
    pcm32 = pcm16.to(torch.int32) * 65536
    assert torch.allclose(voc.resynthesize(pcm32, 24000), expected, atol=1e-6)
    u8 = (torch.round(wav * 127) + 128).to(torch.uint8)
    assert torch.allclose(voc.resynthesize(u8, 24000), voc.resynthesize((u8.float() - 128) / 128, 24000))
    # the bug: int16 taken as float samples of magnitude ~16000 gives another signal altogether
    assert (voc.resynthesize(pcm16.float(), 24000) - expected).abs().max() > 0.1


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_resynthesize_refuses_other_types(voc, dtype):
    with pytest.raises(TypeError, match=rf"expected float samples in \[-1, 1\] or integer PCM .*got {dtype}"):
        voc.resynthesize(torch.ones(2048, dtype=dtype), 24000)
    with pytest.raises(TypeError, match=r"expected a torch\.Tensor, got a numpy\.ndarray"):
        voc.resynthesize(np.zeros(2048, dtype=np.float32), 24000)
