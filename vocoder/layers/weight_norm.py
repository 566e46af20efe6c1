"""Weight norm via torch parametrizations (keys `parametrizations.weight.original0/1`) that also loads
the legacy `weight_g`/`weight_v` layout of NVIDIA's BigVGAN checkpoints, and plain `weight`;
`weight_norm_once` computes every weight of a model once for a training step instead of at each use."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

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


class WeightNorm(nn.Module):
    """The parametrization w = g·v/‖v‖ (g = original0, v = original1, as torch's weight_norm).

    Inside `weight_norm_once` it returns the weight computed on entry for as long as g and v are
    unchanged, so every use in the step (a discriminator scoring real and generated audio, a
    checkpointed block recomputed in backward) shares one weight-norm op and its one backward.
    """

    def __init__(self) -> None:
        super().__init__()
        self.computed: tuple[Tensor, int, int] | None = None  # (weight, g's and v's versions)

    def forward(self, g: Tensor, v: Tensor) -> Tensor:
        if self.computed is not None:
            weight, g_version, v_version = self.computed
            needs_graph = torch.is_grad_enabled() and (g.requires_grad or v.requires_grad)
            if (g._version, v._version) == (g_version, v_version) and (weight.requires_grad or not needs_graph):
                return weight
        return torch._weight_norm(v, g, DIM)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return _norm(weight), weight


def _parametrizations(modules: tuple[nn.Module, ...]) -> list[tuple[nn.Module, WeightNorm]]:
    found = {}
    for root in modules:
        for module in root.modules():
            if parametrize.is_parametrized(module, "weight"):
                for p in module.parametrizations.weight:
                    if isinstance(p, WeightNorm):
                        found[id(p)] = (module, p)
    return list(found.values())


@contextmanager
def weight_norm_once(*modules: nn.Module) -> Iterator[None]:
    """Compute the weight of every weight-normed layer under `modules` now, and reuse it inside.

    Wrap what uses the weights and the backward through them (a forward + backward, or a
    checkpointed forward + backward), and leave before the optimiser steps: a weight whose g or v
    changed in place is computed afresh. Gradients are those of computing it at every use (summed
    before weight norm's backward instead of after: equal up to rounding).
    """
    norms = _parametrizations(modules)
    try:
        for module, p in norms:
            p.computed = None
            weight = module.weight  # computed here, outside any checkpointed region
            g, v = module.parametrizations.weight.original0, module.parametrizations.weight.original1
            p.computed = (weight, g._version, v._version)
        yield
    finally:
        for _, p in norms:
            p.computed = None


@contextmanager
def computed_weights_as_leaves(*modules: nn.Module) -> Iterator[list[tuple[Tensor, Tensor]]]:
    """Inside `weight_norm_once`: every weight computed on entry stands in, for this block, as a leaf
    (a detached copy that requires grad), so that several backward passes accumulate into its .grad and
    stop there; yields (computed weight, leaf) pairs, for one weight-norm backward of the sum later."""
    swapped = []
    for _, p in _parametrizations(modules):
        if p.computed is not None:
            weight, g_version, v_version = p.computed
            leaf = weight.detach().requires_grad_(True)
            p.computed = (leaf, g_version, v_version)
            swapped.append((p, weight, leaf))
    try:
        yield [(weight, leaf) for _, weight, leaf in swapped]
    finally:
        for p, weight, _ in swapped:
            if p.computed is not None:
                p.computed = (weight, *p.computed[1:])


def _load_hook(module: nn.Module, state_dict, prefix, *args) -> None:
    adapt_weight_norm_keys(state_dict, prefix, parametrize.is_parametrized(module, "weight"))


def weight_norm(module: nn.Module) -> nn.Module:
    """Weight-normalise `module.weight` (w = g·v/‖v‖, g per output channel) and return the module.

    The effective weight is unchanged (g = ‖w‖, v = w), so initialise the weight before calling this.
    """
    parametrize.register_parametrization(module, "weight", WeightNorm(), unsafe=True)
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
