"""The generator's settings checked before it is built: its own arguments, and mel settings that fit it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..layers.amp import INITS

RESBLOCK_KINDS = ("1", "2")


def plain(value: Any) -> Any:
    """Mappings → dict, sequences → list, recursively (for configs stored in checkpoints)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def check_mel_settings(generator: Mapping[str, Any], mel: Mapping[str, Any]) -> None:
    """A one-line ValueError when mel settings (vocoder/configs/mel) do not fit a generator's keyword
    arguments (vocoder/configs/model): the band count it takes, and one frame per hop of output."""
    if int(generator["num_mels"]) != int(mel["num_mels"]):
        raise ValueError(f"model.num_mels={generator['num_mels']} but mel.num_mels={mel['num_mels']}: "
                         "the generator takes the mel's bands (pick a model and a mel that fit)")
    hop = math.prod(int(r) for r in generator["upsample_rates"])
    if hop != int(mel["hop_size"]):
        raise ValueError(f"mel.hop_size={mel['hop_size']} but model.upsample_rates {plain(generator['upsample_rates'])} "
                         f"multiply to {hop}: the generator makes one mel frame into hop_size samples")
    source = generator.get("pitch_source")
    if source and int(source["sampling_rate"]) != int(mel["sampling_rate"]):
        raise ValueError(f"model.pitch_source.sampling_rate={source['sampling_rate']} but mel.sampling_rate="
                         f"{mel['sampling_rate']}: the pitch source makes its sines at the audio's rate")


def check_arguments(resblock: str, upsample_rates: Sequence[int], upsample_kernel_sizes: Sequence[int],
                    upsample_initial_channel: int, resblock_kernel_sizes: Sequence[int],
                    resblock_dilation_sizes: Sequence[Sequence[int]], init: str) -> None:
    """A one-line ValueError for generator arguments that cannot build a model."""
    if resblock not in RESBLOCK_KINDS:
        raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")
    if len(upsample_rates) != len(upsample_kernel_sizes) or not upsample_rates:
        raise ValueError(f"upsample_rates {list(upsample_rates)} and upsample_kernel_sizes "
                         f"{list(upsample_kernel_sizes)} must be non-empty and of equal length")
    if len(resblock_kernel_sizes) != len(resblock_dilation_sizes) or not resblock_kernel_sizes:
        raise ValueError(f"resblock_kernel_sizes {list(resblock_kernel_sizes)} and resblock_dilation_sizes "
                         f"{plain(resblock_dilation_sizes)} must be non-empty and of equal length")
    if upsample_initial_channel % 2 ** len(upsample_rates):
        raise ValueError(f"upsample_initial_channel={upsample_initial_channel} must be divisible by "
                         f"2**{len(upsample_rates)} (it halves at every upsampling)")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
