"""The fused anti-aliased activation (upsample ×2 → Snake/SnakeBeta → low-pass ↓2) against an
independent float64 oracle, the plain-PyTorch reference, and NVIDIA BigVGAN's own Activation1d.

Without CUDA the Triton kernels run in Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1 before vocoder is imported). Each kernel has an interior code path (programs
whose reach stays inside the row) and an edge path (clamping, masking, replicate-padding folds):
with the shipped tiles (416 outputs per program) a 1000-sample row has both; with SMALL_TILES
(2 windows of 32, 52 outputs per program, passed as the op's `tiles`) 160 samples have both.
"""

import warnings
import zlib

import pytest
import torch
from numerics import PARAM_GRAD_TOL, VALUE_TOL, assert_compile_matches, rel_err
from torch import nn

from vocoder.kernels import AntiAliasTiles, anti_alias_activation, filters, reference, snake
from vocoder.kernels.anti_alias_op import anti_alias_activation_backward_op
from vocoder.kernels.polyphase import span
from vocoder.kernels.tiles import as_ints
from vocoder.layers import AntiAliasActivation1d, Snake, SnakeBeta

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SMALL_TILES = AntiAliasTiles(rows=2, width=32, warps=1)


@pytest.mark.parametrize("tiles,length", [(AntiAliasTiles(), 1000), (SMALL_TILES, 160)], ids=["shipped", "small"])
def test_lengths_used_reach_interior_programs(tiles, length):
    """The premise of the length tests: the second program of a row is interior (its reach stays
    inside the row) at 1000 samples with the shipped tiles and at 160 with SMALL_TILES."""
    lo, hi = span(12)
    per_program = tiles.outputs_per_program(hi - lo)
    assert per_program == tiles.rows * (tiles.width - 6)
    reach = 2 * max(-lo, hi)
    assert per_program + reach < length - per_program


def test_tiles_are_checked():
    with pytest.raises(ValueError, match="AntiAliasTiles.width must be a positive power of two"):
        AntiAliasTiles(width=24)
    with pytest.raises(ValueError, match="too narrow for a filter whose halo is 6"):
        AntiAliasTiles(width=8).outputs_per_program(6)


def ratio2_filters(k_up=12, k_down=12):
    """BigVGAN's filters for ratio 2 (cutoff 0.25, half-width 0.3)."""
    return filters.resampling_filter(2, k_up), filters.resampling_filter(2, k_down)


def oracle(x, up_filter, down_filter, alpha, beta, logscale):
    """Float64 Activation1d (ratio 2) by index arithmetic on BigVGAN's definitions, no convolutions:
    replicate-pad x by K/2 − 1, transposed convolution with stride 2 (out[q] = Σ_j xp[j]·f[q − 2j]),
    times 2, cropped; Snake(Beta); replicate-pad by (K/2 − 1, K/2), y[m] = Σ_t g[t]·a[2m + t]."""
    x = x.double().cpu()
    f, g = up_filter.reshape(-1).double().cpu(), down_filter.reshape(-1).double().cpu()
    length = x.shape[-1]
    k = f.numel()
    pad = k // 2 - 1
    crop = pad * 2 + (k - 2) // 2
    i = torch.arange(2 * length)
    u = torch.zeros(*x.shape[:2], 2 * length, dtype=torch.float64)
    for s in range(k):
        q = i + crop - s  # position in the transposed convolution's output that tap s feeds from 2j
        j = torch.div(q, 2, rounding_mode="floor")
        hit = (q % 2 == 0) & (j >= 0) & (j < length + 2 * pad)
        u = u + 2 * f[s] * torch.where(hit, x[..., (j - pad).clamp(0, length - 1)], 0.0)
    a = alpha.double().cpu()[None, :, None]
    b = a if beta is None else beta.double().cpu()[None, :, None]
    if logscale:
        a, b = a.exp(), b.exp()
    act = u + torch.sin(a * u) ** 2 / (b + 1e-9)
    kd = g.numel()
    left = kd // 2 - 1
    m = torch.arange(length)
    y = torch.zeros_like(x)
    for t in range(kd):
        y = y + g[t] * act[..., (2 * m + t - left).clamp(0, 2 * length - 1)]
    return y


def make_case(seed_text, shape, dtype, use_beta, logscale, device):
    gen = torch.Generator().manual_seed(zlib.crc32(seed_text.encode()))
    x = (3 * torch.randn(shape, generator=gen, dtype=torch.float64)).to(device, dtype)
    channels = shape[1]
    alpha = 0.2 + torch.rand(channels, generator=gen)
    beta = 0.2 + torch.rand(channels, generator=gen) if use_beta else None
    if logscale:
        alpha = alpha.log()
        beta = None if beta is None else beta.log()
    grad = torch.randn(shape, generator=gen).to(device, dtype)
    alpha = alpha.to(device).requires_grad_()
    beta = None if beta is None else beta.to(device).requires_grad_()
    return x.requires_grad_(), alpha, beta, grad


def values_and_grads(fn, x, alpha, beta, grad):
    for t in (x, alpha, beta):
        if t is not None:
            t.grad = None
    y = fn(x, alpha, beta)
    y.backward(grad)
    return y.detach(), x.grad, alpha.grad, None if beta is None else beta.grad


def check_against_oracle(x, alpha, beta, grad, logscale, dtype, up_filter, down_filter, tiles=None):
    """Fused values and gradients vs the float64 oracle (autograd through index arithmetic)."""
    fu, fd = up_filter.to(x.device), down_filter.to(x.device)
    y, dx, da, db = values_and_grads(
        lambda x_, a_, b_: anti_alias_activation(x_, fu, fd, a_, b_, logscale, tiles=tiles),
        x, alpha, beta, grad)
    x64 = x.detach().cpu().double().requires_grad_()
    a64 = alpha.detach().cpu().double().requires_grad_()
    b64 = None if beta is None else beta.detach().cpu().double().requires_grad_()
    y64 = oracle(x64, up_filter, down_filter, a64, b64, logscale)
    y64.backward(grad.cpu().double())
    errors = {"y": rel_err(y, y64), "dx": rel_err(dx, x64.grad), "dalpha": rel_err(da, a64.grad)}
    if beta is not None:
        errors["dbeta"] = rel_err(db, b64.grad)
    assert y.dtype == dtype and y.shape == x.shape and dx.dtype == dtype
    assert alpha.grad.dtype == torch.float32
    assert errors["y"] < VALUE_TOL[dtype], errors
    assert errors["dx"] < VALUE_TOL[dtype], errors
    assert errors["dalpha"] < PARAM_GRAD_TOL, errors
    assert beta is None or errors["dbeta"] < PARAM_GRAD_TOL, errors
    return errors


# ---------------------------------------------------------------- the filter and the reference


def test_filter_is_bigvgans():
    theirs = pytest.importorskip("bigvgan.alias_free_activation.torch.filter")
    for ratio in (2, 3):
        for k in (12, 8, 13, 18):
            ours = filters.resampling_filter(ratio, k)
            assert torch.equal(ours, theirs.kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, k))
    assert torch.allclose(ratio2_filters()[0].sum(), torch.tensor(1.0))


@pytest.mark.parametrize("length", [1, 5, 13, 100])
def test_reference_path_matches_oracle(torch_backend, length):
    """The op on its reference path (conv forward, closed-form backward), float64, values and grads."""
    x, alpha, beta, grad = make_case(f"ref{length}", (2, 3, length), torch.float64, True, True, "cpu")
    alpha, beta = (p.detach().double().requires_grad_() for p in (alpha, beta))
    fu, fd = ratio2_filters()
    got = values_and_grads(lambda x_, a_, b_: anti_alias_activation(x_, fu, fd, a_, b_, True),
                           x, alpha, beta, grad)
    x64, a64, b64 = (t.detach().clone().requires_grad_() for t in (x, alpha, beta))
    y64 = oracle(x64, fu, fd, a64, b64, True)
    y64.backward(grad)
    for ours, theirs in zip(got, (y64, x64.grad, a64.grad, b64.grad)):
        assert rel_err(ours, theirs) < 1e-12


# ---------------------------------------------------------------- fused kernels vs the oracle


@pytest.mark.parametrize("shape", [(2, 3, 1), (1, 2, 5), (1, 2, 11), (1, 2, 12), (3, 1, 13), (1, 2, 37),
                                   (1, 1, 1000)], ids=lambda s: f"T{s[-1]}")
def test_fused_every_length(triton_device, shape):
    x, alpha, beta, grad = make_case(f"len{shape}", shape, torch.float32, True, False, triton_device)
    check_against_oracle(x, alpha, beta, grad, False, torch.float32, *ratio2_filters())


@pytest.mark.parametrize("shape", [(2, 1, 1), (1, 2, 13), (1, 1, 160)], ids=lambda s: f"T{s[-1]}")
def test_fused_with_small_tiles(triton_device, shape):
    """Tiles are an argument: 52 outputs per program put interior and edge programs in 160 samples."""
    x, alpha, beta, grad = make_case(f"small{shape}", shape, torch.float32, True, True, triton_device)
    check_against_oracle(x, alpha, beta, grad, True, torch.float32, *ratio2_filters(), tiles=SMALL_TILES)


ACTIVATIONS = {"snake": (False, False), "snake-log": (False, True), "snakebeta": (True, False),
               "snakebeta-log": (True, True)}


@pytest.mark.parametrize("dtype,activation", [
    (torch.float32, "snake"), (torch.float32, "snake-log"), (torch.float32, "snakebeta"),
    (torch.float32, "snakebeta-log"), (torch.float16, "snake"), (torch.float16, "snakebeta-log"),
    (torch.bfloat16, "snake-log"), (torch.bfloat16, "snakebeta"),
], ids=str)
def test_fused_dtypes_and_activations(triton_device, dtype, activation):
    use_beta, logscale = ACTIVATIONS[activation]
    x, alpha, beta, grad = make_case(f"{dtype}{activation}", (2, 2, 70), dtype, use_beta, logscale,
                                     triton_device)
    check_against_oracle(x, alpha, beta, grad, logscale, dtype, *ratio2_filters())


@pytest.mark.parametrize("k_up,k_down", [(8, 12), (12, 6), (16, 10)])
def test_fused_other_even_filter_sizes(triton_device, k_up, k_down):
    x, alpha, beta, grad = make_case(f"k{k_up}{k_down}", (1, 2, 130), torch.float32, True, True,
                                     triton_device)
    gen = torch.Generator().manual_seed(k_up)
    fu, fd = ratio2_filters(k_up, k_down)
    fd = fd * (1 + 0.1 * torch.randn(fd.shape, generator=gen))  # asymmetric: tap order matters
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # these sizes run fused: no fallback warning
        check_against_oracle(x, alpha, beta, grad, True, torch.float32, fu, fd)


def test_tolerance_is_sharp(triton_device):
    """A 0.1% change in one filter tap is caught at the fp32 tolerance."""
    x, alpha, beta, _ = make_case("sharp", (1, 2, 60), torch.float32, True, False, triton_device)
    fu, fd = ratio2_filters()
    y = anti_alias_activation(x, fu.to(triton_device), fd.to(triton_device), alpha, beta)
    wrong = fu.clone()
    wrong[0, 0, 5] *= 1.001
    assert rel_err(y, oracle(x.detach(), wrong, fd, alpha.detach(), beta.detach(), False)) > \
        VALUE_TOL[torch.float32]


def test_non_contiguous_input(triton_device):
    x, alpha, beta, grad = make_case("strided", (2, 3, 90), torch.float32, True, False, triton_device)
    xt = x.detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()  # channels-last memory
    assert not xt.is_contiguous()
    check_against_oracle(xt, alpha, beta, grad.transpose(1, 2).contiguous().transpose(1, 2), False,
                         torch.float32, *ratio2_filters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape", [(4, 96, 65536), (1, 1536, 16384)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_real_sizes_on_gpu(shape, dtype):
    """The training sizes on CUDA against the float64 reference (forward and closed-form backward)
    on the same GPU from the same rounded inputs."""
    torch.manual_seed(9)
    fu, fd = (f.cuda() for f in ratio2_filters())
    x = (3 * torch.randn(shape, device="cuda")).to(dtype).requires_grad_()
    alpha = (0.5 * torch.randn(shape[1], device="cuda")).requires_grad_()
    beta = (0.5 * torch.randn(shape[1], device="cuda")).requires_grad_()
    grad = torch.randn(shape, device="cuda").to(dtype)
    y = anti_alias_activation(x, fu, fd, alpha, beta, True)
    y.backward(grad)
    d = torch.float64
    args = (fu.to(d), fd.to(d), alpha.detach().to(d), beta.detach().to(d), True)
    y64 = reference.anti_alias_activation(x.detach().to(d), *args)
    dx64, da64, db64 = reference.anti_alias_activation_backward(grad.to(d), x.detach().to(d), *args)
    assert rel_err(y, y64) < VALUE_TOL[dtype] and rel_err(x.grad, dx64) < VALUE_TOL[dtype]
    assert rel_err(alpha.grad, da64) < PARAM_GRAD_TOL and rel_err(beta.grad, db64) < PARAM_GRAD_TOL


# ---------------------------------------------------------------- conformance with NVIDIA BigVGAN


@pytest.mark.parametrize("use_beta", [False, True], ids=["snake", "snakebeta"])
@pytest.mark.parametrize("logscale", [False, True], ids=["linear", "log"])
def test_matches_nvidia_activation1d(monkeypatch, use_beta, logscale):
    act1d = pytest.importorskip("bigvgan.alias_free_activation.torch.act")
    activations = pytest.importorskip("bigvgan.activations")
    torch.manual_seed(3)
    channels = 5
    if use_beta:
        their_act = activations.SnakeBeta(channels, alpha_logscale=logscale)
        ours = AntiAliasActivation1d(SnakeBeta(channels, logscale=logscale))
    else:
        their_act = activations.Snake(channels, alpha_logscale=logscale)
        ours = AntiAliasActivation1d(Snake(channels, logscale=logscale))
    theirs = act1d.Activation1d(their_act)
    assert torch.equal(ours.upsample.filter, theirs.upsample.filter)
    assert torch.equal(ours.downsample.lowpass.filter, theirs.downsample.lowpass.filter)
    for p in their_act.parameters():
        nn.init.normal_(p, 0.0 if logscale else 0.8, 0.3)
        if not logscale:
            p.data.abs_().add_(0.1)
    state = theirs.state_dict()
    assert set(state) == set(ours.state_dict())
    ours.load_state_dict(state)
    x = 2 * torch.randn(2, channels, 257)

    monkeypatch.setenv("VOCODER_BACKEND", "torch")
    assert (ours(x) - theirs(x)).abs().max().item() <= 1e-6
    eager = AntiAliasActivation1d(type(ours.act)(channels, logscale=logscale), impl="eager")
    eager.load_state_dict(state)
    assert torch.equal(eager(x), ours(x))  # impl="eager" is the fused op's reference path, unfused

    device = "cuda" if torch.cuda.is_available() else "cpu"
    monkeypatch.setenv("VOCODER_BACKEND", "triton")
    fused = ours.to(device)(x.to(device)).cpu()
    expected = theirs(x)
    assert (fused - expected).abs().max().item() <= 2e-5 * expected.abs().max().item()


# ---------------------------------------------------------------- what the op keeps and how it is reproducible


def test_saves_only_input_parameters_and_filters(triton_device):
    layer = AntiAliasActivation1d(SnakeBeta(4, logscale=True)).to(triton_device)
    x = torch.randn(1, 4, 100, device=triton_device, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    allowed = x.numel() * x.element_size() + sum(
        t.numel() * t.element_size() for t in (*layer.parameters(), *layer.buffers()))
    assert sum(storages.values()) <= allowed
    y.sum().backward()
    assert x.grad is not None and layer.act.alpha.grad is not None
    saved.clear()
    eager = AntiAliasActivation1d(SnakeBeta(4, logscale=True), impl="eager").to(triton_device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        eager(x)  # BigVGAN's chain under autograd, for contrast
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    assert sum(storages.values()) >= 4 * x.numel() * x.element_size()


def test_parameter_gradients_are_bitwise_reproducible(triton_device):
    x, alpha, beta, grad = make_case("repro", (1, 2, 900), torch.float32, True, False, triton_device)
    fu, fd = (f.to(triton_device) for f in ratio2_filters())  # 3 programs per row
    tiles = as_ints(AntiAliasTiles())
    runs = [anti_alias_activation_backward_op(grad, x.detach(), fu, fd, alpha.detach(), beta.detach(),
                                              False, 2, 2, tiles) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))


# ---------------------------------------------------------------- autograd, compile, fallbacks, errors


def test_gradcheck_and_double_backward_on_the_reference(torch_backend):
    x, alpha, beta, _ = make_case("gradcheck", (1, 2, 7), torch.float64, True, True, "cpu")
    alpha, beta = (p.detach().double().requires_grad_() for p in (alpha, beta))
    fu, fd = (f.double() for f in ratio2_filters())

    def fn(x_, a_, b_):
        return anti_alias_activation(x_, fu, fd, a_, b_, True)

    assert torch.autograd.gradcheck(fn, (x, alpha, beta))
    assert torch.autograd.gradgradcheck(fn, (x, alpha, beta), fast_mode=True)


def test_double_backward_of_the_fused_op(triton_device):
    """create_graph=True takes the reference formula; its first derivatives equal the fused ones."""
    x, alpha, beta, grad = make_case("double", (1, 2, 40), torch.float32, True, False, triton_device)
    fu, fd = (f.to(triton_device) for f in ratio2_filters())
    y = anti_alias_activation(x, fu, fd, alpha, beta)
    dx, da = torch.autograd.grad(y, (x, alpha), grad, create_graph=True)
    dx_fused, da_fused = torch.autograd.grad(anti_alias_activation(x, fu, fd, alpha, beta), (x, alpha), grad)
    assert rel_err(dx, dx_fused) < 1e-5 and rel_err(da, da_fused) < 1e-4
    (dx.square().sum() + da.sum()).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(beta.grad).all()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 4, 5, padding=2)
        self.act = AntiAliasActivation1d(SnakeBeta(4, logscale=True))
        self.conv2 = nn.Conv1d(4, 2, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(triton_device, backend):
    torch.manual_seed(4)
    model = Block().to(triton_device)
    assert_compile_matches(model, torch.randn(1, 3, 60, device=triton_device), backend, 1e-6, 1e-5)


@pytest.mark.parametrize("k_up,ratio", [(11, 2), (18, 3)], ids=["odd-kernel", "ratio3"])
def test_unsupported_configuration_falls_back_with_one_warning(triton_device, k_up, ratio):
    """(These configurations appear in no other test, so this is their first warning.)"""
    torch.manual_seed(5)
    layer = AntiAliasActivation1d(SnakeBeta(3), ratio, ratio, k_up, 6 * ratio).to(triton_device)
    x = torch.randn(2, 3, 50, device=triton_device, requires_grad=True)
    with pytest.warns(UserWarning, match="no fused kernel"):
        y = layer(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y2 = layer(x)  # once only
    expected = reference.anti_alias_activation(x, layer.upsample.filter, layer.downsample.lowpass.filter,
                                               layer.act.alpha, layer.act.beta, False, ratio, ratio)
    assert torch.equal(y, expected) and torch.equal(y2, expected)
    grad = torch.randn_like(y)
    y.backward(grad)
    dx, d_alpha, d_beta = reference.anti_alias_activation_backward(
        grad, x.detach(), layer.upsample.filter, layer.downsample.lowpass.filter,
        layer.act.alpha.detach(), layer.act.beta.detach(), False, ratio, ratio)
    assert torch.equal(x.grad, dx) and torch.equal(layer.act.alpha.grad, d_alpha)
    assert torch.equal(layer.act.beta.grad, d_beta)
    auto = torch.autograd.grad(expected, x, grad)[0]  # the closed form is autograd's gradient
    assert rel_err(dx, auto) < 1e-6


def test_fp64_takes_the_reference_in_both_ops_with_one_warning_each(triton_device):
    """One support rule (vocoder.kernels.backend.runs_fused): the fused kernels take fp32/fp16/bf16;
    an fp64 input on the Triton path runs the fp64 reference in either op, with one warning per op.
    (No other test sends fp64 down the Triton path.)"""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(1, 2, 40, generator=gen, dtype=torch.float64).to(triton_device)
    alpha = torch.full((2,), 0.7, dtype=torch.float64, device=triton_device)
    fu, fd = (f.double().to(triton_device) for f in ratio2_filters())
    with pytest.warns(UserWarning, match=r"vocoder snake: no fused kernel for torch.float64 input"):
        y = snake(x, alpha)
    with pytest.warns(UserWarning, match=r"vocoder anti_alias_activation: no fused kernel for torch.float64"):
        z = anti_alias_activation(x, fu, fd, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(snake(x, alpha), y) and torch.equal(anti_alias_activation(x, fu, fd, alpha), z)
    assert y.dtype == z.dtype == torch.float64
    assert torch.equal(y, reference.snake(x, alpha, None, 1, False))
    assert torch.equal(z, reference.anti_alias_activation(x, fu, fd, alpha, None, False))


def test_bad_input_is_a_clear_error():
    fu, fd = ratio2_filters()
    alpha = torch.ones(3)
    with pytest.raises(ValueError, match=r"\(batch, channels, time\)"):
        anti_alias_activation(torch.randn(3, 40), fu, fd, alpha)
    with pytest.raises(ValueError, match=r"alpha must have shape \(4,\)"):
        anti_alias_activation(torch.randn(2, 4, 40), fu, fd, alpha)
    with pytest.raises(ValueError, match="at least one time step"):
        anti_alias_activation(torch.randn(2, 3, 0), fu, fd, alpha)
    layer = AntiAliasActivation1d(Snake(3))
    with pytest.raises(ValueError, match=r"expects x of shape \(batch, 3, time\)"):
        layer(torch.randn(2, 5, 40))
    with pytest.raises(ValueError, match="Snake or SnakeBeta"):
        AntiAliasActivation1d(nn.ReLU())
    with pytest.raises(ValueError, match="dim=-1"):
        AntiAliasActivation1d(Snake(3, dim=-1))
