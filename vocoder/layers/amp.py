"""BigVGAN's anti-aliased multi-periodicity (AMP) residual blocks on the fused activation, or HiFi-GAN's
residual blocks (LeakyReLU, no anti-aliasing); module names follow NVIDIA's and jik876's (`convs1.N`,
`convs2.N`, `convs.N`, `activations.N`), so their weights load."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .anti_alias import AntiAliasActivation1d
from .init import snake_kaiming_normal_
from .snake import Snake, SnakeBeta, check_impl
from .weight_norm import remove_weight_norm, weight_norm

ACTIVATIONS = ("snake", "snakebeta", "leaky_relu")
# HiFi-GAN's slopes: 0.1 (its LRELU_SLOPE) in the residual blocks and before each upsampler; torch's
# default 0.01 before conv_post (its F.leaky_relu(x) without a slope).
LEAKY_SLOPE, LEAKY_SLOPE_POST = 0.1, 0.01
# 'bigvgan': conv weights ~ N(0, 0.01) (BigVGAN's init_weights); 'kaiming_snake': Kaiming for a Snake
# input (vocoder.layers.init); 'torch': PyTorch's default Conv1d init, which is what NVIDIA's code
# effectively trains with (its init_weights writes a weight that weight norm recomputes from g, v).
INITS = ("bigvgan", "kaiming_snake", "torch")
BIGVGAN_STD = 0.01
INITIAL_ALPHA = 1.0  # Snake α (and SnakeBeta β) at initialisation, as BigVGAN's (log 0 when logscale)


class LeakyReLU(nn.LeakyReLU):
    """HiFi-GAN's activation: a pointwise LeakyReLU (no anti-aliasing), with the `reach()` of the
    anti-aliased activations it stands in for (0: an output sample reads only its own input)."""

    def reach(self) -> float:
        return 0.0


def amp_activation(activation: str, channels: int, snake_logscale: bool = True,
                   impl: str = "fused", slope: float = LEAKY_SLOPE) -> nn.Module:
    """Up ×2 → Snake or SnakeBeta (α = β = 1 at init) → low-pass ↓2: BigVGAN's `Activation1d`,
    fused or eager (`impl`, see `vocoder.layers.snake.IMPLS`); for "leaky_relu", HiFi-GAN's
    LeakyReLU(`slope`) alone (no parameters, no anti-aliasing)."""
    if activation == "leaky_relu":
        return LeakyReLU(slope)
    if activation == "snake":
        act = Snake(channels, alpha=INITIAL_ALPHA, logscale=snake_logscale, impl=impl)
    elif activation == "snakebeta":
        act = SnakeBeta(channels, alpha=INITIAL_ALPHA, beta=INITIAL_ALPHA, logscale=snake_logscale, impl=impl)
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return AntiAliasActivation1d(act, impl=impl)


def post_activation(activation: str, channels: int, snake_logscale: bool = True,
                    impl: str = "fused") -> nn.Module:
    """The activation before conv_post: BigVGAN's anti-aliased one, or HiFi-GAN's LeakyReLU(0.01)."""
    return amp_activation(activation, channels, snake_logscale, impl, slope=LEAKY_SLOPE_POST)


def upsample_activation(activation: str) -> nn.Module:
    """The activation before each upsampler: HiFi-GAN's LeakyReLU(0.1); BigVGAN has none (Identity,
    which adds no state-dict keys and leaves the signal as it is)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return LeakyReLU(LEAKY_SLOPE) if activation == "leaky_relu" else nn.Identity()


def conv_reach(conv: nn.Conv1d) -> float:
    """One-sided reach of a stride-1 'same' Conv1d, in its own samples: dilation·(kernel − 1)/2."""
    return conv.dilation[0] * (conv.kernel_size[0] - 1) / 2


def init_conv_(conv: nn.Module, init: str) -> nn.Module:
    """Initialise a conv's weight (before weight norm is applied) by the named scheme; bias as torch's."""
    if init == "bigvgan":
        nn.init.normal_(conv.weight, 0.0, BIGVGAN_STD)
    elif init == "kaiming_snake":
        snake_kaiming_normal_(conv.weight, alpha=INITIAL_ALPHA)
    elif init != "torch":
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return conv


def _dilated_conv(channels: int, kernel_size: int, dilation: int, init: str) -> nn.Conv1d:
    """Weight-normed Conv1d, length-preserving ('same' padding) for odd kernel sizes."""
    padding = (kernel_size * dilation - dilation) // 2
    conv = nn.Conv1d(channels, channels, kernel_size, stride=1, dilation=dilation, padding=padding)
    return weight_norm(init_conv_(conv, init))


class _AMPBlock(nn.Module):
    """Shared argument checks and weight-norm removal."""

    def __init__(self, channels: int, kernel_size: int, dilation: Sequence[int], activation: str,
                 init: str, impl: str) -> None:
        super().__init__()
        check_impl(impl)
        if channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"need channels >= 1 and an odd kernel_size, got {channels}, {kernel_size}")
        if not dilation or any(int(d) < 1 for d in dilation):
            raise ValueError(f"dilation must be a non-empty sequence of positive integers, got {dilation!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if init == "kaiming_snake" and activation not in ("snake", "snakebeta"):
            raise ValueError(f"init='kaiming_snake' is for convs that follow a Snake, not activation={activation!r} "
                             "(HiFi-GAN's own init is 'bigvgan': N(0, 0.01))")
        self.channels, self.kernel_size, self.dilation = channels, kernel_size, tuple(int(d) for d in dilation)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (inference); safe to call twice."""
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                remove_weight_norm(module)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"


class AMPBlock1(_AMPBlock):
    """For each dilation d: x = x + conv(1)(act(conv(d)(act(x)))), all convs weight-normed.
    `impl`: how the activations run ("fused" or "eager", `vocoder.layers.snake.IMPLS`)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5),
                 activation: str = "snakebeta", snake_logscale: bool = True, init: str = "bigvgan",
                 impl: str = "fused") -> None:
        super().__init__(channels, kernel_size, dilation, activation, init, impl)
        self.convs1 = nn.ModuleList(_dilated_conv(channels, kernel_size, d, init) for d in self.dilation)
        self.convs2 = nn.ModuleList(_dilated_conv(channels, kernel_size, 1, init) for _ in self.dilation)
        self.activations = nn.ModuleList(
            amp_activation(activation, channels, snake_logscale, impl) for _ in range(2 * len(self.dilation)))

    def forward(self, x: Tensor) -> Tensor:
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2)):
            xt = conv1(self.activations[2 * i](x))
            xt = conv2(self.activations[2 * i + 1](xt))
            x = xt + x
        return x

    def reach(self) -> float:
        """One-sided reach of an output sample into the input, in samples: the residual branches in
        sequence, each act → conv(K, d) → act → conv(K, 1)."""
        acts = self.activations
        return sum(acts[2 * i].reach() + conv_reach(c1) + acts[2 * i + 1].reach() + conv_reach(c2)
                   for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)))


class AMPBlock2(_AMPBlock):
    """For each dilation d: x = x + conv(d)(act(x)); the lighter block, one conv per dilation.
    `impl`: as for AMPBlock1."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5),
                 activation: str = "snakebeta", snake_logscale: bool = True, init: str = "bigvgan",
                 impl: str = "fused") -> None:
        super().__init__(channels, kernel_size, dilation, activation, init, impl)
        self.convs = nn.ModuleList(_dilated_conv(channels, kernel_size, d, init) for d in self.dilation)
        self.activations = nn.ModuleList(
            amp_activation(activation, channels, snake_logscale, impl) for _ in self.dilation)

    def forward(self, x: Tensor) -> Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = conv(act(x)) + x
        return x

    def reach(self) -> float:
        """One-sided reach of an output sample into the input, in samples: act → conv(K, d) per branch."""
        return sum(act.reach() + conv_reach(conv) for conv, act in zip(self.convs, self.activations))
