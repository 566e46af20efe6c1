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

from ..booleans import parse_bool
from ..layers.amp import AMPBlock1, AMPBlock2, init_conv_, post_activation, upsample_activation
from ..layers.weight_norm import remove_weight_norm, weight_norm
from .pitch_conditioning import TARGETS, PitchConditioning, stage_strides
from .generator_settings import check_arguments, plain
from .generator_settings import check_mel_settings as check_mel_settings  # where callers import it from
from .source import pitch_source_settings

RESBLOCKS = {"1": AMPBlock1, "2": AMPBlock2}
# keyword arguments that say how the model runs, not what it is: not recorded in `config`
RUNNING_OPTIONS = ("self", "impl", "activation_checkpointing")


class Generator(nn.Module):
    """conv_pre → [transposed-conv upsample → mean of AMP blocks] per rate → anti-aliased act → conv_post.

    The output is bounded to [-1, 1] by tanh (`use_tanh_at_final`, v1) or a clamp (v2). `init`: see
    `vocoder.layers.amp.INITS`. `generator.config` holds the keyword arguments (what a checkpoint
    records). Two ways of running the model, not part of `config`: `impl`, "fused" (the Triton op)
    or "eager" (BigVGAN's plain-PyTorch chain) anti-aliased activations; `activation_checkpointing`,
    each AMP block recomputed in the backward pass (training only).
    `activation`: "snake"/"snakebeta" (BigVGAN, anti-aliased) or "leaky_relu" (HiFi-GAN V1–V3: LeakyReLU
    0.1 before each upsampler and in the blocks, 0.01 before conv_post, no anti-aliasing).
    `pitch_source` (not in BigVGAN; `vocoder.models.pitch_conditioning`): an optional component whose
    excitation each upsampling stage adds; `conditioning` is None without it.
    """

    def __init__(self, num_mels: int, upsample_rates: Sequence[int], upsample_kernel_sizes: Sequence[int],
                 upsample_initial_channel: int, resblock: str | int = "1",
                 resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                 activation: str = "snakebeta", snake_logscale: bool = True, use_tanh_at_final: bool = True,
                 use_bias_at_final: bool = True, init: str = "bigvgan",
                 pitch_source: Mapping[str, Any] | None = None, impl: str = "fused",
                 activation_checkpointing: bool = False) -> None:
        super().__init__()
        resblock = str(resblock)
        check_arguments(resblock, upsample_rates, upsample_kernel_sizes, upsample_initial_channel,
                        resblock_kernel_sizes, resblock_dilation_sizes, init)
        self.config = plain(dict(
            num_mels=num_mels, upsample_rates=upsample_rates, upsample_kernel_sizes=upsample_kernel_sizes,
            upsample_initial_channel=upsample_initial_channel, resblock=resblock,
            resblock_kernel_sizes=resblock_kernel_sizes, resblock_dilation_sizes=resblock_dilation_sizes,
            activation=activation, snake_logscale=snake_logscale, use_tanh_at_final=use_tanh_at_final,
            use_bias_at_final=use_bias_at_final, init=init))
        source = pitch_source_settings(pitch_source) if pitch_source else None
        if source:
            self.config["pitch_source"] = plain(source)
        self.num_mels, self.hop_length = num_mels, math.prod(int(r) for r in upsample_rates)
        self.num_kernels, self.num_upsamples = len(resblock_kernel_sizes), len(upsample_rates)
        self.use_tanh_at_final = use_tanh_at_final
        self.activation_checkpointing = bool(activation_checkpointing)

        self.conv_pre = weight_norm(nn.Conv1d(num_mels, upsample_initial_channel, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.upsample_activations = nn.ModuleList(upsample_activation(activation) for _ in upsample_rates)
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
        self.activation_post = post_activation(activation, ch, snake_logscale, impl)
        self.conv_post = weight_norm(init_conv_(nn.Conv1d(ch, 1, 7, 1, padding=3, bias=use_bias_at_final), init))
        self.conditioning: PitchConditioning | None = None
        if source:
            channels = [upsample_initial_channel // 2 ** (i + 1) for i in range(len(upsample_rates))]
            self.conditioning = PitchConditioning(num_mels, self.hop_length, channels,
                                                  stage_strides(upsample_rates), source)

    @classmethod
    def arguments(cls) -> tuple[str, ...]:
        """The names of the keyword arguments (the keys of a vocoder/configs/model/*.yaml)."""
        return tuple(name for name in inspect.signature(cls.__init__).parameters if name not in RUNNING_OPTIONS)

    @classmethod
    def settings(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` completed with the defaults, as `Generator.from_config(config).config` will hold it,
        without building the model; a ValueError names keys that are not arguments or missing ones."""
        names, parameters = cls.arguments(), inspect.signature(cls.__init__).parameters
        unknown = sorted(set(config) - set(names))
        if unknown:
            raise ValueError(f"not generator arguments: {', '.join(unknown)} (the generator takes {', '.join(names)})")
        missing = [n for n in names if n not in config and parameters[n].default is inspect.Parameter.empty]
        if missing:
            raise ValueError(f"the generator config lacks {', '.join(missing)}")
        full = {n: config[n] if n in config else parameters[n].default for n in names}
        full = {n: parse_bool(v, n) if parameters[n].annotation in (bool, "bool") else v for n, v in full.items()}
        source = full.pop("pitch_source")  # recorded only when there is one (BigVGAN's configs have none)
        if source:
            full["pitch_source"] = pitch_source_settings(source)
        return plain({**full, "resblock": str(full["resblock"])})

    @classmethod
    def from_config(cls, config: Mapping[str, Any], impl: str = "fused",
                    activation_checkpointing: bool = False) -> "Generator":
        """Build from a mapping of keyword arguments (vocoder/configs/model/*.yaml; see `settings`).
        NVIDIA's flat `config.json` is split into generator and mel settings by `vocoder.checkpoint`.
        `impl`, `activation_checkpointing`: how the model runs (see the class docstring)."""
        return cls(**cls.settings(config), impl=impl, activation_checkpointing=activation_checkpointing)

    @property
    def targets(self) -> tuple[str, ...]:
        """What a training batch must hold besides audio: the conditioning's targets (none without one)."""
        return () if self.conditioning is None else TARGETS

    def _block(self, index: int, x: Tensor) -> Tensor:
        block = self.resblocks[index]
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward(self, mel: Tensor, condition: Mapping[str, Tensor] | None = None,
                targets: Mapping[str, Tensor] | None = None) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """mel (B, num_mels, frames) → audio (B, 1, frames·hop). `condition`: what the conditioning
        takes besides the mel (`PitchConditioning.forward`). With `targets` (training: the batch's
        `self.targets`, which also drive the conditioning) → (audio, the auxiliary losses to add)."""
        if mel.ndim != 3 or mel.shape[1] != self.num_mels:
            raise ValueError(f"the generator expects a mel of shape (batch, {self.num_mels}, frames), "
                             f"got {tuple(mel.shape)}")
        excitations, losses = None, {}
        if self.conditioning is not None:
            if targets is not None:
                self.conditioning.check_targets(targets)
                losses = self.conditioning.losses(mel, targets)
            excitations = self.conditioning(mel, targets if targets is not None else condition)
        elif condition or targets:
            raise ValueError("this generator has no pitch source (model.pitch_source): it takes no f0")
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](self.upsample_activations[i](x))
            if excitations is not None:
                x = x + excitations[i].to(x.dtype)
            xs = self._block(i * self.num_kernels, x)
            for j in range(1, self.num_kernels):
                xs = xs + self._block(i * self.num_kernels + j, x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        audio = torch.tanh(x) if self.use_tanh_at_final else torch.clamp(x, -1.0, 1.0)
        return audio if targets is None else (audio, losses)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference; safe to call twice."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                remove_weight_norm(module)
