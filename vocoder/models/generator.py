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
from ..layers.amp import INITS, AMPBlock1, AMPBlock2, init_conv_, post_activation, upsample_activation
from ..layers.weight_norm import remove_weight_norm, weight_norm
from .pitch import PitchPredictor
from .source import HarmonicSource, pitch_source_settings, source_downsampler

RESBLOCKS = {"1": AMPBlock1, "2": AMPBlock2}


def _plain(value: Any) -> Any:
    """Mappings → dict, sequences → list, recursively (for configs stored in checkpoints)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


def check_mel_settings(generator: Mapping[str, Any], mel: Mapping[str, Any]) -> None:
    """A one-line ValueError when mel settings (vocoder/configs/mel) do not fit a generator's keyword
    arguments (vocoder/configs/model): the band count it takes, and one frame per hop of output."""
    if int(generator["num_mels"]) != int(mel["num_mels"]):
        raise ValueError(f"model.num_mels={generator['num_mels']} but mel.num_mels={mel['num_mels']}: "
                         "the generator takes the mel's bands (pick a model and a mel that fit)")
    hop = math.prod(int(r) for r in generator["upsample_rates"])
    if hop != int(mel["hop_size"]):
        raise ValueError(f"mel.hop_size={mel['hop_size']} but model.upsample_rates {_plain(generator['upsample_rates'])} "
                         f"multiply to {hop}: the generator makes one mel frame into hop_size samples")
    source = generator.get("pitch_source")
    if source and int(source["sampling_rate"]) != int(mel["sampling_rate"]):
        raise ValueError(f"model.pitch_source.sampling_rate={source['sampling_rate']} but mel.sampling_rate="
                         f"{mel['sampling_rate']}: the pitch source makes its sines at the audio's rate")


class Generator(nn.Module):
    """conv_pre → [transposed-conv upsample → mean of AMP blocks] per rate → anti-aliased act → conv_post.

    The output is bounded to [-1, 1] by tanh (`use_tanh_at_final`, v1) or a clamp (v2). `init`: see
    `vocoder.layers.amp.INITS` ('kaiming_snake' applies to the convs that follow a Snake).
    `generator.config` holds the keyword arguments (what a checkpoint records). Setting the attribute
    `activation_checkpointing = True`, a runtime switch rather than config, recomputes each AMP block
    in the backward pass (training only).
    `activation`: "snake"/"snakebeta" (BigVGAN, anti-aliased) or "leaky_relu" (HiFi-GAN V1–V3: LeakyReLU
    0.1 before each upsampler and in the blocks, 0.01 before conv_post, no anti-aliasing).
    `impl`: how the anti-aliased activations run, "fused" (the Triton op) or "eager" (BigVGAN's
    plain-PyTorch chain); a way of running the model, not part of `config`.
    `pitch_source` (not in BigVGAN; settings: `vocoder.models.source.PITCH_SOURCE_DEFAULTS`): adds a
    harmonic source driven by F0 — given, or predicted from the mel by `pitch_predictor` — and
    brought to each stage's rate by `source_downs`, added after every upsampler (as NSF-HiFiGAN does).
    """

    def __init__(self, num_mels: int, upsample_rates: Sequence[int], upsample_kernel_sizes: Sequence[int],
                 upsample_initial_channel: int, resblock: str | int = "1",
                 resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                 activation: str = "snakebeta", snake_logscale: bool = True, use_tanh_at_final: bool = True,
                 use_bias_at_final: bool = True, init: str = "bigvgan",
                 pitch_source: Mapping[str, Any] | None = None, impl: str = "fused") -> None:
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
            use_bias_at_final=use_bias_at_final, init=init))
        source = pitch_source_settings(pitch_source) if pitch_source else None
        if source:
            self.config["pitch_source"] = _plain(source)
        self.num_mels, self.hop_length = num_mels, math.prod(int(r) for r in upsample_rates)
        self.num_kernels, self.num_upsamples = len(resblock_kernel_sizes), len(upsample_rates)
        self.use_tanh_at_final = use_tanh_at_final
        self.activation_checkpointing = False  # a runtime switch: set by the trainer, not recorded

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
        self.source: HarmonicSource | None = None
        self.pitch_predictor: PitchPredictor | None = None
        if source:
            self.pitch_predictor = PitchPredictor(
                num_mels, source["predictor_channels"], source["predictor_layers"], source["predictor_kernel_size"],
                source["bins"], source["f0_min"], source["f0_max"])
            self.source = HarmonicSource(source["sampling_rate"], self.hop_length, source["harmonics"],
                                         source["sine_amplitude"], source["voiced_noise"])
            channels = [upsample_initial_channel // 2 ** (i + 1) for i in range(len(upsample_rates))]
            self.source_downs = nn.ModuleList(
                source_downsampler(c, math.prod(int(r) for r in upsample_rates[i + 1:])) for i, c in enumerate(channels))

    @classmethod
    def arguments(cls) -> tuple[str, ...]:
        """The names of the keyword arguments (the keys of a vocoder/configs/model/*.yaml)."""
        return tuple(name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "impl"))

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
        return _plain({**full, "resblock": str(full["resblock"])})

    @classmethod
    def from_config(cls, config: Mapping[str, Any], impl: str = "fused") -> "Generator":
        """Build from a mapping of keyword arguments (vocoder/configs/model/*.yaml; see `settings`).
        NVIDIA's flat `config.json` is split into generator and mel settings by `vocoder.checkpoint`.
        `impl`: "fused" or "eager" activations (see the class docstring)."""
        return cls(**cls.settings(config), impl=impl)

    def _block(self, index: int, x: Tensor) -> Tensor:
        block = self.resblocks[index]
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward(self, mel: Tensor, f0: Tensor | None = None, voiced: Tensor | None = None,
                phase: Tensor | None = None, first_sample: Tensor | None = None) -> Tensor:
        """mel (B, num_mels, frames) → audio (B, 1, frames·hop). With a pitch source: F0 (Hz) and
        voiced (0/1), (B, frames) each, drive it (teacher forcing; default: predicted from the mel);
        `phase` and `first_sample` (B,) place a window in a longer signal (`HarmonicSource.forward`)."""
        if mel.ndim != 3 or mel.shape[1] != self.num_mels:
            raise ValueError(f"the generator expects a mel of shape (batch, {self.num_mels}, frames), "
                             f"got {tuple(mel.shape)}")
        excitation = None
        if self.source is not None:
            if f0 is None:
                f0, voiced = self.pitch_predictor.track(mel)
            elif voiced is None or f0.shape != (mel.shape[0], mel.shape[2]) or voiced.shape != f0.shape:
                raise ValueError(f"f0 and voiced must both be (batch, frames) = {(mel.shape[0], mel.shape[2])}, "
                                 f"got {None if f0 is None else tuple(f0.shape)} and "
                                 f"{None if voiced is None else tuple(voiced.shape)}")
            excitation = self.source(f0, voiced, phase, first_sample)
        elif f0 is not None:
            raise ValueError("this generator has no pitch source (model.pitch_source): it takes no f0")
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](self.upsample_activations[i](x))
            if excitation is not None:
                x = x + self.source_downs[i](excitation).to(x.dtype)
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
