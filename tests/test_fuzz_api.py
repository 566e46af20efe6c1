"""Fuzzing the Python API with the inputs a new user passes first: numpy arrays and lists to a Vocoder,
a per-channel tensor to Snake, soundfile's (samples, channels) layout and odd rates to resynthesize.
Each is accepted or refused with an error that names the argument and says what is accepted."""

import numpy as np
import pytest
import torch

from vocoder import Vocoder
from vocoder.layers import Snake, SnakeBeta
from vocoder.models import Generator

TINY = {"num_mels": 100, "upsample_rates": [4, 4], "upsample_kernel_sizes": [8, 8], "upsample_initial_channel": 16,
        "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]]}
TINY_MEL = {"sampling_rate": 24000, "n_fft": 64, "num_mels": 100, "hop_size": 16, "win_size": 64, "fmin": 0,
            "fmax": None}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def voc() -> Vocoder:
    torch.manual_seed(0)
    return Vocoder(Generator.from_config({**TINY, "init": "torch"}), TINY_MEL, device="cpu")


@pytest.mark.parametrize("mel,kind", [
    (np.zeros((100, 4), np.float32), r"numpy\.ndarray \(torch\.from_numpy converts it\)"),
    ([[0.0] * 4] * 100, r"list \(torch\.tensor converts it\)"),
    ("mel.npy", "str"),
], ids=["numpy", "list", "str"])
def test_calling_a_vocoder_on_a_non_tensor_says_what_is_accepted(voc, mel, kind):
    with pytest.raises(TypeError, match=rf"^mel: expected a torch\.Tensor of shape \[100, frames\], got a {kind}"):
        voc(mel)
    assert voc(torch.from_numpy(np.zeros((100, 4), np.float32))).shape == (64,)


def test_snake_takes_one_alpha_per_channel():
    alpha = torch.tensor([0.5, 1.0, 2.0])
    layer = Snake(3, alpha=alpha)
    assert torch.equal(layer.alpha.detach(), alpha) and layer.alpha.requires_grad
    x = torch.randn(2, 3, 10)
    assert torch.allclose(layer(x), x + torch.sin(alpha[:, None] * x) ** 2 / alpha[:, None], atol=1e-6)
    assert torch.allclose(Snake(3, alpha=alpha, logscale=True).alpha.detach(), alpha.log())
    beta = SnakeBeta(3, alpha=np.array([1.0, 2.0, 3.0]), beta=[1.0, 1.0, 4.0])
    assert beta.alpha.tolist() == [1.0, 2.0, 3.0] and beta.beta.tolist() == [1.0, 1.0, 4.0]
    assert Snake(3, alpha=torch.tensor(2.0)).alpha.tolist() == [2.0, 2.0, 2.0]
    alpha.add_(1)  # the layer holds its own copy
    assert layer.alpha.tolist() == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("kwargs,error,message", [
    ({"alpha": torch.ones(4)}, ValueError, r"alpha must be one number or 3 per-channel values .*got 4 values"),
    ({"alpha": "big"}, TypeError, r"alpha must be one number or 3 per-channel values"),
    ({"alpha": torch.tensor([1.0, 2.0, 3.0]), "correction": "std"}, ValueError, r"correction='std' is computed for one"),
    ({"alpha": torch.tensor([1.0, 0.0, 3.0]), "logscale": True}, ValueError, r"positive when logscale=True"),
    ({"alpha": float("inf")}, ValueError, r"alpha=inf must be a finite number"),
])
def test_snake_refuses_other_alphas_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        Snake(3, **kwargs)


def test_resynthesize_hints_at_soundfiles_layout(voc):
    wav = torch.randn(2, 4800) * 0.1
    assert voc.resynthesize(wav, 24000).shape[0] == 2
    with pytest.raises(ValueError, match=r"found \(4800, 2\): .*soundfile's \(samples, channels\) layout; pass wav\.T"):
        voc.resynthesize(wav.T, 24000)


@pytest.mark.parametrize("sr,message", [
    (0, "sr must be a positive integer of at least 1000 Hz, got 0"),
    (-8000, "sr must be a positive integer of at least 1000 Hz, got -8000"),
    (24000.5, r"sr must be a positive integer \(Hz\), got 24000.5"),
    ("24000", r"sr must be a positive integer \(Hz\), got '24000'"),
    (True, r"sr must be a positive integer \(Hz\), got True"),
    (1, "sr must be a positive integer of at least 1000 Hz, got 1"),
])
def test_resynthesize_refuses_rates_naming_the_argument(voc, sr, message):
    with pytest.raises(ValueError, match=rf"^resynthesize: {message}"):
        voc.resynthesize(torch.randn(4800) * 0.1, sr)


def test_resynthesize_takes_whole_rates_of_any_number_type(voc):
    wav = torch.randn(4800) * 0.1
    expected = voc.resynthesize(wav, 16000)
    assert torch.equal(voc.resynthesize(wav, 16000.0), expected)
    assert torch.equal(voc.resynthesize(wav, np.int64(16000)), expected)
