"""The fused Snake/SnakeBeta op against float64 autograd of the plain formula, on odd shapes."""

import zlib

import pytest
import torch
from numerics import PARAM_GRAD_TOL, VALUE_TOL, rel_err
from torch.utils._python_dispatch import TorchDispatchMode

from vocoder.kernels import SnakeTiles, anti_alias_activation, reference, snake, snake_beta
from vocoder.kernels.filters import kaiser_sinc_filter1d

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def make_input(kind: str, device: str, dtype: torch.dtype, gen: torch.Generator):
    """(x, dim) for a layout case; values spread over several periods of sin."""
    def randn(*shape):
        return (3 * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(device, dtype)

    if kind == "rows":  # (B, C, T) audio, long rows
        return randn(2, 3, 1000), 1
    if kind == "length1":
        return randn(1, 4, 1), 1
    if kind == "short_odd":  # non-power-of-two, fewer elements per row than the ROWS threshold
        return randn(3, 5, 7), 1
    if kind == "channels_last":  # (B, T, C) with dim=-1
        return randn(2, 37, 6), -1
    if kind == "strided":  # a slice with gaps: not a permutation of a dense tensor
        return randn(2, 3, 601)[:, :, ::2], 1
    if kind == "transposed":  # (B, T, C) memory viewed as (B, C, T)
        return randn(2, 300, 5).transpose(1, 2), 1
    if kind == "4d":
        return randn(2, 3, 5, 70), 1
    if kind == "4d_channels_last_memory":
        return randn(2, 3, 5, 7).contiguous(memory_format=torch.channels_last), 1
    if kind == "1d":
        return randn(9), 0
    raise ValueError(kind)


LAYOUTS = ["rows", "length1", "short_odd", "channels_last", "strided", "transposed", "4d",
           "4d_channels_last_memory", "1d"]


def oracle(x, alpha, beta, dim, logscale, grad):
    """Float64 values and autograd gradients of the plain formula, from the same rounded inputs."""
    x64 = x.detach().double().requires_grad_()
    a64 = alpha.detach().double().requires_grad_()
    b64 = None if beta is None else beta.detach().double().requires_grad_()
    y = reference.snake(x64, a64, b64, dim % x.ndim, logscale)
    y.backward(grad.double())
    return y, x64.grad, a64.grad, None if b64 is None else b64.grad


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("use_beta", [False, True], ids=["snake", "snakebeta"])
@pytest.mark.parametrize("logscale", [False, True], ids=["linear", "log"])
def test_fused_matches_float64(triton_device, layout, dtype, use_beta, logscale):
    gen = torch.Generator().manual_seed(zlib.crc32(f"{layout}{dtype}{use_beta}{logscale}".encode()))
    x, dim = make_input(layout, triton_device, dtype, gen)
    channels = x.shape[dim]
    alpha = (0.2 + torch.rand(channels, generator=gen)).to(triton_device)
    beta = (0.2 + torch.rand(channels, generator=gen)).to(triton_device) if use_beta else None
    if logscale:
        alpha = alpha.log()
        beta = None if beta is None else beta.log()
    alpha.requires_grad_()
    if beta is not None:
        beta.requires_grad_()
    x.requires_grad_()
    y = snake(x, alpha, dim, logscale) if beta is None else snake_beta(x, alpha, beta, dim, logscale)
    grad = torch.randn(y.shape, generator=gen).to(triton_device, dtype)
    y.backward(grad)
    y64, dx64, da64, db64 = oracle(x, alpha, beta, dim, logscale, grad)

    assert y.dtype == dtype and y.shape == x.shape
    assert y.stride() == torch.empty_like(x).stride()  # the layout the fake implementation promises
    assert rel_err(y, y64) < VALUE_TOL[dtype]
    assert x.grad.dtype == dtype and rel_err(x.grad, dx64) < VALUE_TOL[dtype]
    assert alpha.grad.dtype == torch.float32 and rel_err(alpha.grad, da64) < PARAM_GRAD_TOL
    if beta is not None:
        assert rel_err(beta.grad, db64) < PARAM_GRAD_TOL


def test_tolerance_is_sharp(triton_device):
    """A 0.1% error in α is caught at the fp32 tolerance: the comparison above can fail."""
    gen = torch.Generator().manual_seed(1)
    x, dim = make_input("rows", triton_device, torch.float32, gen)
    alpha = torch.full((3,), 0.7, device=triton_device)
    y = snake(x, alpha, dim)
    wrong = reference.snake(x.double(), alpha.double() * 1.001, None, dim, False)
    assert rel_err(y, wrong) > VALUE_TOL[torch.float32]


def test_parameter_gradients_are_bitwise_reproducible(triton_device):
    gen = torch.Generator().manual_seed(2)
    x, dim = make_input("rows", triton_device, torch.float32, gen)
    grads = []
    for _ in range(2):
        alpha = torch.full((3,), 0.9, device=triton_device, requires_grad=True)
        beta = torch.full((3,), 1.3, device=triton_device, requires_grad=True)
        snake_beta(x, alpha, beta, dim).sum().backward()
        grads.append((alpha.grad, beta.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


SMALL_TILES = SnakeTiles(forward_block=128, forward_warps=1, backward_block=64, backward_warps=1,
                         backward_block_16bit=64, backward_warps_16bit=1, column_rows=4, column_width=16)


@pytest.mark.parametrize("layout", ["rows", "channels_last"])
def test_tiles_are_an_argument(triton_device, layout):
    """Another launch geometry (several programs per row; small column tiles) gives the same
    elementwise results to the bit and the same parameter gradients up to summation order."""
    gen = torch.Generator().manual_seed(7)
    x, dim = make_input(layout, triton_device, torch.float32, gen)
    channels = x.shape[dim]
    runs = []
    for tiles in (None, SMALL_TILES):
        xr = x.detach().clone().requires_grad_()
        alpha = torch.full((channels,), 0.6, device=triton_device, requires_grad=True)
        beta = torch.full((channels,), 1.1, device=triton_device, requires_grad=True)
        y = snake_beta(xr, alpha, beta, dim, tiles=tiles)
        y.backward(torch.cos(y.detach()))
        runs.append((y.detach(), xr.grad, alpha.grad, beta.grad))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert rel_err(runs[1][2], runs[0][2]) < 1e-6 and rel_err(runs[1][3], runs[0][3]) < 1e-6
    with pytest.raises(ValueError, match="SnakeTiles.forward_block must be a positive power of two"):
        SnakeTiles(forward_block=1000)


def test_empty_input(triton_device):
    x = torch.empty(2, 3, 0, device=triton_device, requires_grad=True)
    alpha = torch.ones(3, device=triton_device, requires_grad=True)
    y = snake(x, alpha)
    y.sum().backward()
    assert y.shape == x.shape and torch.equal(alpha.grad, torch.zeros(3, device=triton_device))


def test_reference_is_bigvgan_formula_bit_for_bit(torch_backend):
    """fp32 reference path = BigVGAN's `x + 1/(β + 1e-9) * sin(αx)²`, same bits."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 333, generator=gen)
    log_alpha, log_beta = 0.3 * torch.randn(8, generator=gen), 0.3 * torch.randn(8, generator=gen)
    alpha = torch.exp(log_alpha.unsqueeze(0).unsqueeze(-1))
    beta = torch.exp(log_beta.unsqueeze(0).unsqueeze(-1))
    expected = x + (1.0 / (beta + 0.000000001)) * torch.pow(torch.sin(x * alpha), 2)
    assert torch.equal(snake_beta(x, log_alpha, log_beta, logscale=True), expected)
    expected = x + (1.0 / (alpha + 0.000000001)) * torch.pow(torch.sin(x * alpha), 2)
    assert torch.equal(snake(x, log_alpha, logscale=True), expected)


@pytest.mark.parametrize("use_beta", [False, True], ids=["snake", "snakebeta"])
@pytest.mark.parametrize("logscale", [False, True], ids=["linear", "log"])
def test_gradcheck_and_double_backward(torch_backend, use_beta, logscale):
    """The closed-form backward (used by the op) against finite differences, and its own grads."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    alpha = (0.5 + torch.rand(3, generator=gen, dtype=torch.float64)).requires_grad_()
    beta = (0.5 + torch.rand(3, generator=gen, dtype=torch.float64)).requires_grad_()

    def f(x, alpha, beta):
        return snake_beta(x, alpha, beta, 1, logscale) if use_beta else snake(x, alpha, 1, logscale)

    assert torch.autograd.gradcheck(f, (x, alpha, beta))
    assert torch.autograd.gradgradcheck(f, (x, alpha, beta))


def test_double_backward_through_fused_forward(triton_device):
    """create_graph=True on the Triton path: the second derivative comes from the reference formula."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 50, generator=gen).to(triton_device).requires_grad_()
    alpha = torch.full((3,), 0.8, device=triton_device, requires_grad=True)
    (dx,) = torch.autograd.grad(snake(x, alpha).sum(), x, create_graph=True)
    (d2x,) = torch.autograd.grad(dx.sum(), x)
    # d²y/dx² = 2α²cos(2αx)/(α+ε)
    expected = 2 * 0.8**2 * torch.cos(2 * 0.8 * x.detach()) / (0.8 + 1e-9)
    assert rel_err(d2x, expected) < 1e-5


def test_saves_only_input_and_parameters(triton_device):
    """Memory claim: backward keeps x, α, β, never the output or an intermediate."""
    x = torch.randn(4, 8, 512, device=triton_device, requires_grad=True)
    alpha = torch.ones(8, device=triton_device, requires_grad=True)
    beta = torch.ones(8, device=triton_device, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = snake_beta(x, alpha, beta)
    saved_bytes = sum(t.numel() * t.element_size() for t in saved)
    assert saved_bytes <= x.nbytes + alpha.nbytes + beta.nbytes
    assert all(t.data_ptr() != y.data_ptr() for t in saved)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        saved.clear()
        reference.snake(x, alpha, beta, 1, False)  # the eager formula, for contrast
    assert sum(t.numel() * t.element_size() for t in saved) >= 3 * x.nbytes


def test_bad_arguments_name_the_problem():
    x = torch.randn(2, 3, 10)
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\)"):
        snake(x, torch.ones(4))
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        snake_beta(x, torch.ones(3), torch.ones(3, 1))
    with pytest.raises(ValueError, match="dim=3 is out of range"):
        snake(x, torch.ones(3), dim=3)


def test_triton_on_cpu_without_interpreter_is_an_error(monkeypatch):
    monkeypatch.setenv("VOCODER_BACKEND", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        snake(torch.randn(1, 2, 3), torch.ones(2))
    monkeypatch.setenv("VOCODER_BACKEND", "cuda-please")
    with pytest.raises(ValueError, match="VOCODER_BACKEND"):
        snake(torch.randn(1, 2, 3), torch.ones(2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape,dim", [((50, 48, 160000), 1), ((4, 16384, 96), -1), ((3, 1536, 8191), 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_real_sizes_on_gpu(shape, dim, dtype):
    """The sweep at training sizes on CUDA, against float64 on the same GPU."""
    torch.manual_seed(6)
    x = (3 * torch.randn(shape, device="cuda")).to(dtype).requires_grad_()
    channels = shape[dim]
    alpha = (0.2 + torch.rand(channels, device="cuda")).log().requires_grad_()
    beta = (0.2 + torch.rand(channels, device="cuda")).log().requires_grad_()
    y = snake_beta(x, alpha, beta, dim, logscale=True)
    grad = torch.randn_like(y)
    y.backward(grad)
    y64, dx64, da64, db64 = oracle(x, alpha, beta, dim, True, grad)
    assert rel_err(y, y64) < VALUE_TOL[dtype] and rel_err(x.grad, dx64) < VALUE_TOL[dtype]
    assert rel_err(alpha.grad, da64) < PARAM_GRAD_TOL and rel_err(beta.grad, db64) < PARAM_GRAD_TOL


class _AtenOps(TorchDispatchMode):
    """The aten ops that run inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


# what a fused backward may run besides its Triton kernels: allocations and views (and, under
# Triton's interpreter, its copies of the arguments), and the one reduction of the partial sums
NO_COMPUTE = {"empty", "empty_like", "new_empty", "empty_strided", "view", "permute", "unbind", "as_strided",
              "set_", "copy_", "detach", "alias"}


@pytest.mark.parametrize("op", ["snake", "anti_alias"])
@pytest.mark.parametrize("logscale", [False, True], ids=["linear", "log"])
def test_backward_turns_partial_sums_into_parameter_gradients_in_one_reduction(triton_device, op, logscale):
    """The per-channel reduction and the closed form of dα, dβ were a dozen small torch ops per
    backward (a launch each on the GPU); now one reduction and one small kernel."""
    gen = torch.Generator().manual_seed(3)
    x = (3 * torch.randn(2, 3, 700, generator=gen)).to(triton_device).requires_grad_()
    alpha, beta = ((0.5 + torch.rand(3, generator=gen)).to(triton_device).requires_grad_() for _ in range(2))
    taps = kaiser_sinc_filter1d(0.25, 0.3, 12).to(triton_device)
    y = snake_beta(x, alpha, beta, logscale=logscale) if op == "snake" else anti_alias_activation(
        x, taps, taps, alpha, beta, logscale)
    grad = torch.randn_like(y)
    with _AtenOps() as seen:
        torch.autograd.grad(y, (x, alpha, beta), grad)
    compute = [o for o in seen.ops if o not in NO_COMPUTE]
    assert compute == ["sum"], compute
