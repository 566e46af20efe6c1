"""Weight norm via torch parametrizations (keys `parametrizations.weight.original0/1`) that also loads
the legacy `weight_g`/`weight_v` layout of NVIDIA's BigVGAN checkpoints, and plain `weight`."""

from __future__ import annotations

from collections.abc import MutableMapping

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _parametrized_weight_norm

G, V = "parametrizations.weight.original0", "parametrizations.weight.original1"
LEGACY_G, LEGACY_V = "weight_g", "weight_v"
DIM = 0  # the output-channel axis for Conv1d; the input-channel axis for ConvTranspose1d, as torch's default


def _norm(weight: Tensor) -> Tensor:
    """‖w‖ over every axis but DIM, kept as size-1 axes (the g of w = g·v/‖v‖ with v = w)."""
    return torch.norm_except_dim(weight, 2, DIM)


def adapt_weight_norm_keys(state_dict: MutableMapping[str, Tensor], prefix: str, parametrized: bool) -> None:
    """Rewrite, in place, the weight entries under `prefix` into the layout of the target module.

    parametrized=True: legacy g/v are renamed, a plain `weight` becomes g = ‖w‖, v = w.
    parametrized=False: g and v (either layout) become `weight` = g·v/‖v‖.
    """
    new_g, new_v = prefix + G, prefix + V
    old_g, old_v, plain = prefix + LEGACY_G, prefix + LEGACY_V, prefix + "weight"
    if parametrized:
        if old_g in state_dict and old_v in state_dict and new_g not in state_dict:
            state_dict[new_g], state_dict[new_v] = state_dict.pop(old_g), state_dict.pop(old_v)
        elif plain in state_dict and new_g not in state_dict:
            weight = state_dict.pop(plain)
            state_dict[new_g], state_dict[new_v] = _norm(weight), weight
        return
    if plain in state_dict:
        return
    for g_key, v_key in ((old_g, old_v), (new_g, new_v)):
        if g_key in state_dict and v_key in state_dict:
            g, v = state_dict.pop(g_key), state_dict.pop(v_key)
            state_dict[plain] = torch._weight_norm(v, g, DIM)
            return


def _load_hook(module: nn.Module, state_dict, prefix, *args) -> None:
    adapt_weight_norm_keys(state_dict, prefix, parametrize.is_parametrized(module, "weight"))


def weight_norm(module: nn.Module) -> nn.Module:
    """Weight-normalise `module.weight` (w = g·v/‖v‖, g per output channel) and return the module.

    The effective weight is unchanged (g = ‖w‖, v = w), so initialise the weight before calling this.
    """
    _parametrized_weight_norm(module, "weight", dim=DIM)
    if not getattr(module, "_accepts_legacy_weight_norm", False):
        module.register_load_state_dict_pre_hook(_load_hook)
        module._accepts_legacy_weight_norm = True
    return module


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold g and v back into a plain `weight` (for inference); a module without weight norm is left as is."""
    if parametrize.is_parametrized(module, "weight"):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return module


def adapt_state_dict(model: nn.Module, state_dict: MutableMapping[str, Tensor]) -> dict[str, Tensor]:
    """A copy of `state_dict` with every weight-normed layer of `model` in `model`'s current layout."""
    adapted = dict(state_dict)
    for name, module in model.named_modules():
        if getattr(module, "_accepts_legacy_weight_norm", False):
            adapt_weight_norm_keys(adapted, f"{name}." if name else "", parametrize.is_parametrized(module, "weight"))
    return adapted
