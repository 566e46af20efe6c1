"""BigVGAN's discriminators: multi-period (MPD), multi-resolution (MRD), multi-scale sub-band CQT (v2).

Submodule and buffer names follow NVIDIA BigVGAN, so its discriminator state dicts load as they are
(legacy weight-norm keys `weight_g`/`weight_v` are mapped by `vocoder.layers.weight_norm`). Each
multi-discriminator maps (real, generated) audio of shape (B, 1, T) to BigVGAN's tuple
(real scores, generated scores, real feature maps, generated feature maps); `features=False` drops
the feature maps as each sub-discriminator finishes, and `checkpointing=True` (built so) recomputes each
sub-discriminator in backward (training memory). Leaky ReLUs run in place on the conv outputs, so a
layer keeps one tensor for backward, not two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm
from torch.utils.checkpoint import checkpoint
from torchaudio.transforms import Resample

from ..audio.cqt import ConstantQTransform
from ..booleans import parse_bool
from ..layers.weight_norm import weight_norm

LRELU_SLOPE = 0.1
# The discriminators' BigVGAN config keys and their values where a config leaves them out: NVIDIA's code
# defaults (cqtd_*, use_cqtd_instead_of_mrd) and, for the keys its code requires, the values of its
# released v1/v2 configs. Written once: the constructors' defaults, `from_config` and the Hydra group
# `discriminator` (its `base` entry) all take them from here. None: the key it overrides applies.
DEFAULTS: dict[str, Any] = {
    "use_spectral_norm": False,
    "discriminator_channel_mult": 1,
    "mpd_reshapes": (2, 3, 5, 7, 11),
    "use_cqtd_instead_of_mrd": False,
    "resolutions": ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240)),
    "mrd_use_spectral_norm": None,  # None: use_spectral_norm
    "mrd_channel_mult": None,  # None: discriminator_channel_mult
    "cqtd_filters": 32,
    "cqtd_max_filters": 1024,
    "cqtd_filters_scale": 1,
    "cqtd_dilations": (1, 2, 4),
    "cqtd_hop_lengths": (512, 256, 256),
    "cqtd_n_octaves": (9, 9, 9),
    "cqtd_bins_per_octaves": (24, 36, 48),
    "cqtd_in_channels": 1,
    "cqtd_out_channels": 1,
    "cqtd_normalize_volume": False,
}
Outputs = tuple[list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]]


def _norm(use_spectral_norm: bool):
    return spectral_norm if use_spectral_norm else weight_norm


def _check_pair(y: torch.Tensor, y_hat: torch.Tensor) -> None:
    for name, t in (("real", y), ("generated", y_hat)):
        if t.dim() != 3 or t.shape[1] != 1:
            raise ValueError(f"{name} audio must have shape (B, 1, T), got {tuple(t.shape)}")


def _score_only(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return d(x)[0]


class _MultiDiscriminator(nn.Module):
    """Scores (real, generated) with every sub-discriminator in `self.discriminators`."""

    discriminators: nn.ModuleList

    def __init__(self, checkpointing: bool = False) -> None:
        super().__init__()
        self.checkpointing = bool(checkpointing)  # recompute each sub-discriminator in backward

    def _score(self, d: nn.Module, x: torch.Tensor, features: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.checkpointing and self.training and torch.is_grad_enabled():
            if features:
                return checkpoint(d, x, use_reentrant=False)
            return checkpoint(_score_only, d, x, use_reentrant=False), []
        score, fmap = d(x)
        return score, fmap if features else []

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor, features: bool = True) -> Outputs:
        """(real, generated) (B, 1, T) → (y_d_rs, y_d_gs, fmap_rs, fmap_gs); the feature-map lists
        are empty with `features=False`."""
        _check_pair(y, y_hat)
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = [], [], [], []
        for d in self.discriminators:
            score_r, fmap_r = self._score(d, y, features)
            score_g, fmap_g = self._score(d, y_hat, features)
            y_d_rs.append(score_r)
            y_d_gs.append(score_g)
            if features:
                fmap_rs.append(fmap_r)
                fmap_gs.append(fmap_g)
        return y_d_rs, y_d_gs, fmap_rs, fmap_gs


def _conv_stack(x: torch.Tensor, convs: nn.ModuleList, conv_post: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv layers then the output conv: flattened scores and every layer's feature map."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE, inplace=True)  # the conv's output is not needed again
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap

class DiscriminatorP(nn.Module):
    """Period discriminator: audio folded into (T / period, period) and scored by 2-D convolutions."""

    def __init__(
        self,
        period: int,
        kernel_size: int = 5,
        stride: int = 3,
        use_spectral_norm: bool = False,
        channel_mult: float = 1,
    ) -> None:
        super().__init__()
        self.period = period
        norm = _norm(use_spectral_norm)
        ch = [1] + [int(c * channel_mult) for c in (32, 128, 512, 1024, 1024)]
        pad = ((kernel_size - 1) // 2, 0)
        self.convs = nn.ModuleList(
            norm(nn.Conv2d(ch[i], ch[i + 1], (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad))
            for i in range(5)
        )
        self.conv_post = norm(nn.Conv2d(ch[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) → flattened scores (B, N) and the feature maps of every layer."""
        b, c, t = x.shape
        if t % self.period:
            extra = self.period - t % self.period
            x = F.pad(x, (0, extra), mode="reflect")
            t += extra
        x = x.view(b, c, t // self.period, self.period)
        return _conv_stack(x, self.convs, self.conv_post)


class MultiPeriodDiscriminator(_MultiDiscriminator):
    """One DiscriminatorP per period (BigVGAN's `mpd_reshapes`)."""

    def __init__(
        self,
        periods: Sequence[int] = DEFAULTS["mpd_reshapes"],
        use_spectral_norm: bool = DEFAULTS["use_spectral_norm"],
        discriminator_channel_mult: float = DEFAULTS["discriminator_channel_mult"],
        checkpointing: bool = False,
    ) -> None:
        super().__init__(checkpointing)
        self.mpd_reshapes = list(periods)
        self.discriminators = nn.ModuleList(
            DiscriminatorP(p, use_spectral_norm=use_spectral_norm, channel_mult=discriminator_channel_mult)
            for p in self.mpd_reshapes
        )

    @classmethod
    def from_config(cls, config: Mapping, checkpointing: bool = False) -> "MultiPeriodDiscriminator":
        """Build from BigVGAN keys: mpd_reshapes, use_spectral_norm, discriminator_channel_mult."""
        c = with_defaults(config)
        return cls(c["mpd_reshapes"], c["use_spectral_norm"], c["discriminator_channel_mult"], checkpointing)


class DiscriminatorR(nn.Module):
    """Resolution discriminator: 2-D convolutions over a linear STFT magnitude (rectangular window)."""

    def __init__(
        self, resolution: Sequence[int], use_spectral_norm: bool = False, channel_mult: float = 1
    ) -> None:
        super().__init__()
        if len(resolution) != 3:
            raise ValueError(f"a resolution is (n_fft, hop_length, win_length), got {resolution}")
        self.resolution = tuple(int(r) for r in resolution)
        norm = _norm(use_spectral_norm)
        ch = int(32 * channel_mult)
        self.convs = nn.ModuleList(
            [norm(nn.Conv2d(1, ch, (3, 9), padding=(1, 4)))]
            + [norm(nn.Conv2d(ch, ch, (3, 9), stride=(1, 2), padding=(1, 4))) for _ in range(3)]
            + [norm(nn.Conv2d(ch, ch, (3, 3), padding=(1, 1)))]
        )
        self.conv_post = norm(nn.Conv2d(ch, 1, (3, 3), padding=(1, 1)))
        self.register_buffer("window", torch.ones(self.resolution[2]), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) → |STFT| (B, n_fft // 2 + 1, frames), frames starting at 0 after reflect padding."""
        n_fft, hop, win = self.resolution
        pad = int((n_fft - hop) / 2)
        x = F.pad(x, (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x, n_fft=n_fft, hop_length=hop, win_length=win, window=self.window.to(x.dtype),
            center=False, return_complex=True,
        )
        return torch.linalg.vector_norm(torch.view_as_real(spec), dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) → flattened scores (B, N) and the feature maps of every layer."""
        x = self.spectrogram(x).unsqueeze(1)
        return _conv_stack(x, self.convs, self.conv_post)


class MultiResolutionDiscriminator(_MultiDiscriminator):
    """One DiscriminatorR per STFT resolution (n_fft, hop_length, win_length) (BigVGAN v1)."""

    def __init__(
        self,
        resolutions: Sequence[Sequence[int]] = DEFAULTS["resolutions"],
        use_spectral_norm: bool = DEFAULTS["use_spectral_norm"],
        discriminator_channel_mult: float = DEFAULTS["discriminator_channel_mult"],
        checkpointing: bool = False,
    ) -> None:
        super().__init__(checkpointing)
        self.resolutions = [tuple(r) for r in resolutions]
        self.discriminators = nn.ModuleList(
            DiscriminatorR(r, use_spectral_norm, discriminator_channel_mult) for r in self.resolutions
        )

    @classmethod
    def from_config(cls, config: Mapping, checkpointing: bool = False) -> "MultiResolutionDiscriminator":
        """Build from BigVGAN keys: resolutions, use_spectral_norm / mrd_use_spectral_norm,
        discriminator_channel_mult / mrd_channel_mult (the mrd_ keys override)."""
        c = with_defaults(config)
        spectral, mult = c["mrd_use_spectral_norm"], c["mrd_channel_mult"]
        return cls(
            resolutions=c["resolutions"],
            use_spectral_norm=c["use_spectral_norm"] if spectral is None else spectral,
            discriminator_channel_mult=c["discriminator_channel_mult"] if mult is None else mult,
            checkpointing=checkpointing,
        )


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    return ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)


class DiscriminatorCQT(nn.Module):
    """Sub-band CQT discriminator: audio upsampled 2×, complex CQT (real, imag as channels), one
    pre-convolution per octave, then dilated 2-D convolutions over (time, frequency)."""

    def __init__(
        self,
        sampling_rate: int,
        hop_length: int,
        n_octaves: int,
        bins_per_octave: int,
        filters: int = DEFAULTS["cqtd_filters"],
        max_filters: int = DEFAULTS["cqtd_max_filters"],
        filters_scale: int = DEFAULTS["cqtd_filters_scale"],
        dilations: Sequence[int] = DEFAULTS["cqtd_dilations"],
        out_channels: int = DEFAULTS["cqtd_out_channels"],
        normalize_volume: bool = DEFAULTS["cqtd_normalize_volume"],
    ) -> None:
        super().__init__()
        self.hop_length, self.n_octaves, self.bins_per_octave = hop_length, n_octaves, bins_per_octave
        self.normalize_volume = normalize_volume
        kernel, stride = (3, 9), (1, 2)
        self.cqt_transform = ConstantQTransform(
            sampling_rate * 2, hop_length, n_bins=bins_per_octave * n_octaves,
            bins_per_octave=bins_per_octave, pad_mode="constant",
        )
        self.conv_pres = nn.ModuleList(
            nn.Conv2d(2, 2, kernel, padding=_same_padding(kernel)) for _ in range(n_octaves)
        )
        self.convs = nn.ModuleList([nn.Conv2d(2, filters, kernel, padding=_same_padding(kernel))])
        in_ch = min(filters_scale * filters, max_filters)
        for i, d in enumerate(dilations):
            out_ch = min(filters_scale ** (i + 1) * filters, max_filters)
            self.convs.append(weight_norm(nn.Conv2d(
                in_ch, out_ch, kernel, stride=stride, dilation=(d, 1),
                padding=_same_padding(kernel, (d, 1)),
            )))
            in_ch = out_ch
        out_ch = min(filters_scale ** (len(dilations) + 1) * filters, max_filters)
        square = (kernel[0], kernel[0])
        self.convs.append(weight_norm(nn.Conv2d(in_ch, out_ch, square, padding=_same_padding(square))))
        self.conv_post = weight_norm(nn.Conv2d(out_ch, out_channels, square, padding=_same_padding(square)))
        self.activation = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)
        self.resample = Resample(orig_freq=sampling_rate, new_freq=sampling_rate * 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) → scores (B, out_channels, frames, bins') and the feature maps of the convs."""
        if self.normalize_volume:
            x = x - x.mean(dim=-1, keepdim=True)
            x = 0.8 * x / (x.abs().amax(dim=-1, keepdim=True) + 1e-9)
        z = self.cqt_transform(self.resample(x))  # (B, bins, frames, 2)
        z = z.permute(0, 3, 2, 1)  # (B, [real, imag], frames, bins)
        bpo = self.bins_per_octave
        z = torch.cat(
            [pre(z[..., i * bpo : (i + 1) * bpo]) for i, pre in enumerate(self.conv_pres)], dim=-1
        )
        fmap = []
        for conv in self.convs:
            z = self.activation(conv(z))
            fmap.append(z)
        return self.conv_post(z), fmap


class MultiScaleSubbandCQTDiscriminator(_MultiDiscriminator):
    """BigVGAN v2's multi-scale sub-band CQT discriminator: a DiscriminatorCQT per (hop, octaves, bins/octave).

    `options`: DiscriminatorCQT's keyword arguments shared by every scale (filters, max_filters,
    filters_scale, dilations, out_channels, normalize_volume), its defaults where left out.
    """

    def __init__(
        self,
        sampling_rate: int,
        hop_lengths: Sequence[int] = DEFAULTS["cqtd_hop_lengths"],
        n_octaves: Sequence[int] = DEFAULTS["cqtd_n_octaves"],
        bins_per_octaves: Sequence[int] = DEFAULTS["cqtd_bins_per_octaves"],
        checkpointing: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(checkpointing)
        if not len(hop_lengths) == len(n_octaves) == len(bins_per_octaves):
            raise ValueError("hop_lengths, n_octaves and bins_per_octaves need one entry per scale")
        self.discriminators = nn.ModuleList(
            DiscriminatorCQT(sampling_rate, hop, octaves, bpo, **options)
            for hop, octaves, bpo in zip(hop_lengths, n_octaves, bins_per_octaves)
        )

    @classmethod
    def from_config(
        cls, config: Mapping, sampling_rate: int | None = None, checkpointing: bool = False
    ) -> "MultiScaleSubbandCQTDiscriminator":
        """Build from BigVGAN keys: sampling_rate (or the argument) and the cqtd_* keys (BigVGAN's
        defaults where absent)."""
        if sampling_rate is None:
            if config.get("sampling_rate") is None:
                raise KeyError(
                    "the CQT discriminator needs the audio sampling rate: give config['sampling_rate'] "
                    "or from_config(config, sampling_rate=...)"
                )
            sampling_rate = config["sampling_rate"]
        c = with_defaults(config)
        if c["cqtd_in_channels"] != 1:
            raise ValueError("cqtd_in_channels other than 1 is not supported (mono audio only)")
        return cls(
            int(sampling_rate), c["cqtd_hop_lengths"], c["cqtd_n_octaves"], c["cqtd_bins_per_octaves"],
            checkpointing=checkpointing, filters=c["cqtd_filters"], max_filters=c["cqtd_max_filters"], filters_scale=c["cqtd_filters_scale"],
            dilations=c["cqtd_dilations"], out_channels=c["cqtd_out_channels"],
            normalize_volume=c["cqtd_normalize_volume"],
        )



def with_defaults(config: Mapping) -> dict[str, Any]:
    """`config` (BigVGAN keys; others are kept, unused) over DEFAULTS; the boolean keys parsed strictly."""
    merged = {**DEFAULTS, **config}
    return {k: parse_bool(v, k) if isinstance(DEFAULTS.get(k), bool) and v is not None else v
            for k, v in merged.items()}


def build_discriminators(config: Mapping, sampling_rate: int, checkpointing: bool = False) -> dict[str, nn.Module]:
    """The `discriminator:` config group's set: MPD plus the CQT discriminator (v2) or MRD (v1);
    `checkpointing`: each recomputes its sub-discriminators in backward (training memory).

    `config` holds DEFAULTS keys only (a ValueError names any other); those left out take DEFAULTS.
    """
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"discriminator: unknown key(s) {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    found: dict[str, nn.Module] = {"mpd": MultiPeriodDiscriminator.from_config(config, checkpointing)}
    if with_defaults(config)["use_cqtd_instead_of_mrd"]:
        found["cqtd"] = MultiScaleSubbandCQTDiscriminator.from_config(config, sampling_rate, checkpointing)
    else:
        found["mrd"] = MultiResolutionDiscriminator.from_config(config, checkpointing)
    return found
