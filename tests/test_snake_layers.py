"""Snake / SnakeBeta modules: construction, state-dict compatibility, layouts, autocast, compile."""

import math

import pytest
import torch
from numerics import assert_compile_matches, rel_err
from torch import nn

from vocoder.kernels import reference
from vocoder.layers import Snake, SnakeBeta


def test_parameters_are_named_and_initialised_like_bigvgan():
    layer = SnakeBeta(5, alpha=0.5, beta=2.0)
    assert set(dict(layer.named_parameters())) == {"alpha", "beta"}
    assert torch.equal(layer.alpha, torch.full((5,), 0.5)) and torch.equal(layer.beta, torch.full((5,), 2.0))
    log_layer = Snake(5, alpha=0.5, logscale=True)
    assert torch.allclose(log_layer.alpha, torch.full((5,), math.log(0.5)))
    assert not Snake(3, trainable=False).alpha.requires_grad
    assert list(layer.state_dict()) == ["alpha", "beta"]  # nothing else to trip BigVGAN loaders


def test_loads_bigvgan_and_dac_state_dicts():
    bigvgan_style = {"alpha": torch.randn(6), "beta": torch.randn(6)}
    layer = SnakeBeta(6, logscale=True)
    layer.load_state_dict(bigvgan_style)
    assert torch.equal(layer.beta, bigvgan_style["beta"])
    dac_style = {"alpha": torch.rand(1, 6, 1) + 0.1}  # descript-audio-codec Snake1d
    snake = Snake(6)
    snake.load_state_dict(dac_style)
    x = torch.randn(2, 6, 40)
    alpha = dac_style["alpha"]
    dac_formula = x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)
    assert torch.allclose(snake(x), dac_formula, atol=1e-6)
    with pytest.raises(RuntimeError, match="size mismatch"):
        Snake(4).load_state_dict({"alpha": torch.ones(6)})


def test_matches_nvidia_bigvgan_modules():
    """Conformance with NVIDIA's own layers (test-only reference, installed from PyPI)."""
    activations = pytest.importorskip("bigvgan.activations")
    torch.manual_seed(0)
    x = torch.randn(2, 7, 300)
    for logscale in (False, True):
        theirs = activations.SnakeBeta(7, alpha_logscale=logscale)
        nn.init.normal_(theirs.alpha, 0.3, 0.1), nn.init.normal_(theirs.beta, 0.5, 0.1)
        ours = SnakeBeta(7, logscale=logscale)
        ours.load_state_dict(theirs.state_dict())
        assert torch.equal(ours(x), theirs(x))
        theirs = activations.Snake(7, alpha_logscale=logscale)
        nn.init.normal_(theirs.alpha, 0.3, 0.1)
        ours = Snake(7, logscale=logscale)
        ours.load_state_dict(theirs.state_dict())
        assert torch.equal(ours(x), theirs(x))


def test_channels_last_model_with_dim_minus_one(triton_device):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 16), Snake(16, dim=-1), nn.Linear(16, 4)).to(triton_device)
    x = torch.randn(3, 50, 8, device=triton_device)
    y = model(x)
    h = model[0](x)
    expected = model[2](reference.snake(h, model[1].alpha, None, 2, False))
    assert rel_err(y, expected) < 1e-5
    y.square().mean().backward()
    assert model[1].alpha.grad is not None and model[1].alpha.grad.shape == (16,)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="alpha=0.0 must be positive"):
        Snake(4, alpha=0.0, logscale=True)
    with pytest.raises(ValueError, match="channels"):
        SnakeBeta(0)
    with pytest.raises(ValueError, match="correction"):
        Snake(4, correction="median")
    with pytest.raises(ValueError, match=r"impl must be one of \('fused', 'eager'\), got 'triton'"):
        Snake(4, impl="triton")
    with pytest.raises(ValueError, match=r"SnakeBeta with 4 channels on dim=1 got an input of shape \(2, 5, 10\)"):
        SnakeBeta(4, impl="eager")(torch.randn(2, 5, 10))


@pytest.mark.parametrize("cls", [Snake, SnakeBeta])
def test_eager_impl_is_bigvgans_formula_and_keeps_its_intermediates(cls):
    """impl="eager" runs the plain formula under autograd: the fused layer's numbers (values to the
    bit on the CPU, where both are the reference formula; gradients through autograd instead of
    the closed form), and what autograd keeps is several times x where the fused op keeps x."""
    torch.manual_seed(9)
    fused, eager = cls(6, logscale=True, correction="std"), cls(6, logscale=True, correction="std", impl="eager")
    with torch.no_grad():
        for p in fused.parameters():
            p.normal_(0.0, 0.3)
    eager.load_state_dict(fused.state_dict())
    x = torch.randn(2, 6, 500, requires_grad=True)
    saved = {}
    for name, layer in (("fused", fused), ("eager", eager)):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.nbytes) or t, lambda t: t):
            y = layer(x)
        y.backward(torch.cos(y.detach()))
        saved[name] = (y.detach(), x.grad.clone(), layer.alpha.grad, sum(sizes))
        x.grad = None
    assert torch.equal(saved["fused"][0], saved["eager"][0])
    for got, want in zip(saved["eager"][1:3], saved["fused"][1:3]):
        assert rel_err(got, want) < 1e-6
    assert saved["fused"][3] <= x.nbytes + 64 < 3 * x.nbytes <= saved["eager"][3]  # α, β and the scale


def test_autocast_gives_low_precision_output_and_fp32_parameter_grads(triton_device):
    device_type = "cuda" if triton_device == "cuda" else "cpu"
    conv = nn.Conv1d(4, 4, 3, padding=1).to(triton_device)
    act = SnakeBeta(4).to(triton_device)
    x = torch.randn(2, 4, 300, device=triton_device)
    with torch.autocast(device_type, dtype=torch.bfloat16):
        y = act(conv(x))
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert act.alpha.grad.dtype == torch.float32 and torch.isfinite(act.alpha.grad).all()


class SmallEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.act1 = nn.Conv1d(2, 8, 5, padding=2), Snake(8)
        self.conv2, self.act2 = nn.Conv1d(8, 8, 3, padding=1), SnakeBeta(8, logscale=True)

    def forward(self, x):
        return self.act2(self.conv2(self.act1(self.conv1(x))))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(triton_device, backend):
    torch.manual_seed(2)
    model = SmallEncoder().to(triton_device)
    assert_compile_matches(model, torch.randn(2, 2, 400, device=triton_device), backend, 1e-5, 1e-4)


@pytest.mark.parametrize("layer", [Snake(16, alpha=0.7, correction="std"),
                                   SnakeBeta(16, alpha=0.7, beta=0.4, correction="std")], ids=["snake", "snakebeta"])
def test_std_correction_gives_unit_variance(layer):
    """With 'std' correction the output of N(0, 1) input has unit variance at the initial α, β."""
    x = torch.randn(8, 16, 20000, generator=torch.Generator().manual_seed(7))
    # 2.56M samples: the sample variance's standard error is below 0.002, so 0.01 is 5 SE
    assert abs(layer(x).var().item() - 1.0) < 0.01
    raw = layer.__class__(16, alpha=0.7, **({"beta": 0.4} if isinstance(layer, SnakeBeta) else {}))
    assert abs(raw(x).var().item() - 1.0) > 0.05  # the correction is doing something
