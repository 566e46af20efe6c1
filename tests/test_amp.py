"""AMP blocks: conformance with NVIDIA's AMPBlock1/2, the fused path, torch.compile, initialisation."""

import math

import pytest
import torch
from numerics import rel_err

from vocoder.layers import AMPBlock1, AMPBlock2, AntiAliasActivation1d, Snake, snake_gain
from vocoder.layers.weight_norm import G, V



def _nvidia_block(kind: int, channels: int, kernel: int, dilation, activation: str, logscale: bool):
    """NVIDIA's block with perturbed weights and α/β (their init leaves α = β = 1)."""
    bigvgan = pytest.importorskip("bigvgan.bigvgan")
    env = pytest.importorskip("bigvgan.env")
    cls = bigvgan.AMPBlock1 if kind == 1 else bigvgan.AMPBlock2
    block = cls(env.AttrDict(snake_logscale=logscale), channels, kernel, dilation, activation=activation)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.copy_(p + 0.3 * torch.randn_like(p) if logscale else 0.5 + torch.rand_like(p))
            elif name.endswith("weight_g"):
                p.mul_(1 + 0.2 * torch.rand_like(p))
    return block


@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("activation,logscale", [("snakebeta", True), ("snake", True), ("snake", False)])
def test_matches_nvidia_block(torch_backend, kind, activation, logscale):
    torch.manual_seed(kind)
    theirs = _nvidia_block(kind, 16, 5, (1, 3, 5), activation, logscale)
    ours = (AMPBlock1 if kind == 1 else AMPBlock2)(16, 5, (1, 3, 5), activation, logscale)
    ours.load_state_dict(theirs.state_dict())  # their weight_g / weight_v keys
    x = torch.randn(2, 16, 100)
    with torch.no_grad():
        expected = theirs(x)
        assert (ours(x) - expected).abs().max().item() <= 1e-5
        ours.remove_weight_norm()
        assert (ours(x) - expected).abs().max().item() <= 1e-5


def test_state_dict_keys_and_padding():
    block = AMPBlock1(4, kernel_size=7, dilation=(1, 3))
    keys = set(block.state_dict())
    assert {"convs1.1.bias", f"convs1.1.{G}", f"convs2.0.{V}", "activations.3.act.beta",
            "activations.0.upsample.filter", "activations.0.downsample.lowpass.filter"} <= keys
    assert [c.padding[0] for c in block.convs1] == [3, 9] and block.convs1[1].dilation == (3,)
    assert len(block.activations) == 4 and len(AMPBlock2(4, dilation=(1, 3)).activations) == 2
    assert AMPBlock2(4)(torch.randn(1, 4, 33)).shape == (1, 4, 33)
    block.remove_weight_norm()
    block.remove_weight_norm()  # a second call is harmless
    assert "convs1.0.weight" in block.state_dict() and not any("parametrizations" in k for k in block.state_dict())
    with pytest.raises(ValueError, match="activation"):
        AMPBlock1(4, activation="relu")
    with pytest.raises(ValueError, match="init"):
        AMPBlock2(4, init="xavier")


def test_plain_weights_load_into_weight_normed_block():
    torch.manual_seed(3)
    source = AMPBlock2(6, 3, (1, 2))
    x = torch.randn(1, 6, 40)
    expected = source(x)
    source.remove_weight_norm()
    target = AMPBlock2(6, 3, (1, 2))
    target.load_state_dict(source.state_dict())  # `weight` → g = ‖w‖, v = w
    torch.testing.assert_close(target(x), expected, rtol=1e-5, atol=1e-6)
    legacy = {k.replace(G, "weight_g").replace(V, "weight_v"): v for k, v in target.state_dict().items()}
    target.remove_weight_norm()
    target.load_state_dict(legacy)  # NVIDIA's g / v into a block without weight norm: w = g·v/‖v‖
    torch.testing.assert_close(target(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,dilation", [(AMPBlock1, (2,)), (AMPBlock2, (1, 2))])
def test_fused_path_matches_reference(triton_device, monkeypatch, kind, dilation):
    torch.manual_seed(4)  # two anti-aliased activations per block: the interpreter is slow
    block = kind(4, 3, dilation).to(triton_device)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.normal_(0.0, 0.3)
    x = torch.randn(2, 4, 24, device=triton_device, requires_grad=True)

    def run():
        y = block(x)
        y.backward(torch.cos(y.detach()))
        grads = [x.grad.clone()] + [p.grad.clone() for p in block.parameters()]
        x.grad = None
        block.zero_grad(set_to_none=True)
        return y.detach(), grads

    fused, fused_grads = run()
    monkeypatch.setenv("VOCODER_BACKEND", "torch")
    ref, ref_grads = run()
    assert (fused - ref).abs().max().item() <= 1e-5
    for got, want in zip(fused_grads, ref_grads):
        assert rel_err(got, want) <= 1e-4


def test_compile_fullgraph_forward_backward():
    torch.manual_seed(5)
    block = AMPBlock1(4, 3, (1, 3))
    x = torch.randn(2, 4, 32, requires_grad=True)
    expected = block(x)
    expected.sum().backward()
    grad_x, grad_alpha = x.grad.clone(), block.activations[0].act.alpha.grad.clone()
    x.grad = None
    block.zero_grad(set_to_none=True)
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y.sum().backward()
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(x.grad, grad_x)
    torch.testing.assert_close(block.activations[0].act.alpha.grad, grad_alpha)


def test_reach_is_the_formula_and_bounds_the_measured_reach():
    """reach(): one-sided receptive field in samples (the chunking docstring's formula, a = 6 for the
    12-tap filters at ratio 2), and no output sample depends on an input farther away."""
    assert AntiAliasActivation1d(Snake(3)).reach() == 6
    assert AntiAliasActivation1d(Snake(3), 2, 2, 8, 16).reach() == 2 + 4
    block1, block2 = AMPBlock1(2, 3, (1, 3, 5)), AMPBlock2(2, 5, (1, 3))
    assert block1.reach() == (12 + 2) + (12 + 4) + (12 + 6)  # Σ 2a + (K − 1)(d + 1)/2
    assert block2.reach() == (6 + 2) + (6 + 6)  # Σ a + (K − 1)·d/2
    torch.manual_seed(8)
    for block, exact in ((block1, 42), (block2, 18)):  # each activation reaches 5 samples here, not 6
        block = block.double()
        x = torch.randn(1, 2, 161, dtype=torch.float64, requires_grad=True)
        block(x)[0, :, 80].sum().backward()  # the gradient of one output sample
        touched = (x.grad.abs().sum(1)[0] > 0).nonzero().flatten()
        assert max(80 - touched.min().item(), touched.max().item() - 80) == exact <= block.reach()


def test_eager_impl_matches_fused():
    """impl="eager" (BigVGAN's plain-PyTorch activations): the same block numbers as the fused
    layers' reference path, every activation eager."""
    torch.manual_seed(10)
    fused, eager = AMPBlock1(4, 3, (1, 3)), AMPBlock1(4, 3, (1, 3), impl="eager")
    eager.load_state_dict(fused.state_dict())
    assert all(a.impl == "eager" and a.act.impl == "eager" for a in eager.activations)
    x = torch.randn(2, 4, 40)
    with torch.no_grad():
        assert torch.equal(eager(x), fused(x))
    with pytest.raises(ValueError, match="impl must be one of"):
        AMPBlock2(4, impl="Eager")


def _effective_weights(block) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for m in block.modules() if isinstance(m, torch.nn.Conv1d)])


def test_default_init_is_bigvgan_normal():
    torch.manual_seed(6)
    block = AMPBlock1(64, kernel_size=7)
    w = _effective_weights(block)  # g·v/‖v‖ with g = ‖v‖ at init: the drawn weights themselves
    assert abs(w.std().item() - 0.01) < 0.0002 and abs(w.mean().item()) < 0.0002
    conv = block.convs1[0]
    torch.testing.assert_close(conv.weight, conv.parametrizations.weight.original1)


def test_kaiming_snake_init():
    torch.manual_seed(7)
    channels, kernel = 64, 7
    block = AMPBlock2(channels, kernel_size=kernel, init="kaiming_snake")
    expected = snake_gain(1.0) / math.sqrt(channels * kernel)  # α = 1 at init, fan_in = C·k
    assert abs(_effective_weights(block).std().item() / expected - 1) < 0.02
    torch_default = _effective_weights(AMPBlock2(channels, kernel_size=kernel, init="torch")).std().item()
    assert abs(torch_default * math.sqrt(3 * channels * kernel) - 1) < 0.02  # kaiming_uniform(a=√5)
