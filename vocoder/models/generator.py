"""BigVGAN generator (v1/v2 shapes): mel (B, num_mels, frames) → waveform (B, 1, frames·hop), with
NVIDIA's submodule names (`conv_pre`, `ups.i.0`, `resblocks.j`, ...) so its state dicts load."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..layers.amp import INITS, AMPBlock1, AMPBlock2, amp_activation, init_conv_
from ..layers.weight_norm import remove_weight_norm, weight_norm

RESBLOCKS = {"1": AMPBlock1, "2": AMPBlock2}


def _plain(value: Any) -> Any:
    """Mappings → dict, sequences → list, recursively (for configs stored in checkpoints)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


class Generator(nn.Module):
    """conv_pre → [transposed-conv upsample → mean of AMP blocks] per rate → anti-aliased act → conv_post.

    The output is bounded to [-1, 1] by tanh (`use_tanh_at_final`, v1) or a clamp (v2). `init`: see
    `vocoder.layers.amp.INITS` ('kaiming_snake' applies to the convs that follow a Snake).
    `activation_checkpointing` recomputes each AMP block in the backward pass (training only).
    `impl`: how the anti-aliased activations run, "fused" (the Triton op) or "eager" (BigVGAN's
    plain-PyTorch chain); a way of running the model, not part of `config`.
    """

    def __init__(self, num_mels: int, upsample_rates: Sequence[int], upsample_kernel_sizes: Sequence[int],
                 upsample_initial_channel: int, resblock: str | int = "1",
                 resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                 activation: str = "snakebeta", snake_logscale: bool = True, use_tanh_at_final: bool = True,
                 use_bias_at_final: bool = True, activation_checkpointing: bool = False,
                 init: str = "bigvgan", impl: str = "fused") -> None:
        super().__init__()
        resblock = str(resblock)
        if resblock not in RESBLOCKS:
            raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")
        if len(upsample_rates) != len(upsample_kernel_sizes) or not upsample_rates:
            raise ValueError(f"upsample_rates {list(upsample_rates)} and upsample_kernel_sizes "
                             f"{list(upsample_kernel_sizes)} must be non-empty and of equal length")
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes) or not resblock_kernel_sizes:
            raise ValueError(f"resblock_kernel_sizes {list(resblock_kernel_sizes)} and resblock_dilation_sizes "
                             f"{_plain(resblock_dilation_sizes)} must be non-empty and of equal length")
        if upsample_initial_channel % 2 ** len(upsample_rates):
            raise ValueError(f"upsample_initial_channel={upsample_initial_channel} must be divisible by "
                             f"2**{len(upsample_rates)} (it halves at every upsampling)")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.config = _plain(dict(
            num_mels=num_mels, upsample_rates=upsample_rates, upsample_kernel_sizes=upsample_kernel_sizes,
            upsample_initial_channel=upsample_initial_channel, resblock=resblock,
            resblock_kernel_sizes=resblock_kernel_sizes, resblock_dilation_sizes=resblock_dilation_sizes,
            activation=activation, snake_logscale=snake_logscale, use_tanh_at_final=use_tanh_at_final,
            use_bias_at_final=use_bias_at_final, activation_checkpointing=activation_checkpointing, init=init))
        self.num_mels, self.hop_length = num_mels, math.prod(int(r) for r in upsample_rates)
        self.num_kernels, self.num_upsamples = len(resblock_kernel_sizes), len(upsample_rates)
        self.use_tanh_at_final, self.activation_checkpointing = use_tanh_at_final, activation_checkpointing

        self.conv_pre = weight_norm(nn.Conv1d(num_mels, upsample_initial_channel, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = RESBLOCKS[resblock]
        ch = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            up = nn.ConvTranspose1d(ch, ch // 2, kernel, rate, padding=(kernel - rate) // 2)
            if init != "torch":  # the upsampler does not follow a Snake: 'kaiming_snake' keeps BigVGAN's
                init_conv_(up, "bigvgan")
            self.ups.append(nn.ModuleList([weight_norm(up)]))
            ch //= 2
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, d, activation, snake_logscale, init, impl))
        self.activation_post = amp_activation(activation, ch, snake_logscale, impl)
        self.conv_post = weight_norm(init_conv_(nn.Conv1d(ch, 1, 7, 1, padding=3, bias=use_bias_at_final), init))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], impl: str = "fused") -> "Generator":
        """Build from a BigVGAN `config.json` dict or one of vocoder/configs/model/*.yaml; other keys are ignored.

        The whole mapping (mel settings included) is kept as `generator.config` for checkpoints.
        """
        names = set(inspect.signature(cls.__init__).parameters) - {"self", "impl"}
        model = cls(**{k: v for k, v in config.items() if k in names}, impl=impl)
        hop = config.get("hop_size")
        if hop is not None and int(hop) != model.hop_length:
            raise ValueError(f"hop_size={hop} but the upsample_rates {list(config['upsample_rates'])} "
                             f"multiply to {model.hop_length}")
        model.config = {**_plain(config), **model.config}
        return model

    def _block(self, index: int, x: Tensor) -> Tensor:
        block = self.resblocks[index]
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward(self, mel: Tensor) -> Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.num_mels:
            raise ValueError(f"the generator expects a mel of shape (batch, {self.num_mels}, frames), "
                             f"got {tuple(mel.shape)}")
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](x)
            xs = self._block(i * self.num_kernels, x)
            for j in range(1, self.num_kernels):
                xs = xs + self._block(i * self.num_kernels + j, x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh_at_final else torch.clamp(x, -1.0, 1.0)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference; safe to call twice."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                remove_weight_norm(module)
