"""The discriminators' backward in two passes, real audio then generated audio, so that only one
side's graph is alive at a time (half the discriminator activations of one joint backward), with the
same gradients bit for bit.

Each weight-normed weight is computed once for the update (`weight_norm_once`) and used twice (real,
generated); a joint backward sums the two gradients that reach it and then runs weight norm's
backward once. Here the computed weights stand in as leaves for the two passes, which accumulate
the same two gradients in their `.grad` (and in the plain parameters'), and weight norm's backward
then runs once on the sum: the same additions of the same numbers (a sum of two is commutative).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..layers.weight_norm import computed_weights_as_leaves


def _score(sub: nn.Module, audio: Tensor) -> Tensor:
    return sub(audio)[0]


def backward_one_side(discriminators: Mapping[str, nn.Module], audio: Tensor, real: bool,
                      autocast: Callable[[], AbstractContextManager], checkpointing: bool,
                      terms: dict[str, dict[bool, list[Tensor]]]) -> None:
    """Every sub-discriminator on `audio` (real or generated), its loss terms appended to `terms`, and
    their sum's backward (into the parameters and the weight leaves); this side's graph is freed then."""
    total = 0.0
    for name, multi in discriminators.items():
        for sub in multi.discriminators:
            with autocast():
                score = checkpoint(_score, sub, audio, use_reentrant=False) if checkpointing else _score(sub, audio)
            term = torch.mean((1 - score) ** 2) if real else torch.mean(score**2)
            terms[name][real].append(term.detach())
            total = total + term
    total.backward()


def discriminator_backward_in_two_passes(discriminators: Mapping[str, nn.Module], wav: Tensor, fake: Tensor,
                                         autocast: Callable[[], AbstractContextManager],
                                         checkpointing: bool = False) -> dict[str, Tensor]:
    """Gradients of the least-squares discriminator loss (`discriminator_loss` of every multi-discriminator,
    summed) into every parameter's .grad, real side first; call inside `weight_norm_once` of the
    discriminators. Returns each multi-discriminator's loss (detached), summed in discriminator_loss's
    order. `fake` is the generated audio, detached."""
    terms: dict[str, dict[bool, list[Tensor]]] = {name: {True: [], False: []} for name in discriminators}
    with computed_weights_as_leaves(*discriminators.values()) as weights:
        for real, audio in ((True, wav), (False, fake)):
            backward_one_side(discriminators, audio, real, autocast, checkpointing, terms)
    used = [(weight, leaf.grad) for weight, leaf in weights if leaf.grad is not None]
    if used:
        torch.autograd.backward([w for w, _ in used], [g for _, g in used])
    losses = {}
    for name, sides in terms.items():
        loss = 0.0
        for r_loss, g_loss in zip(sides[True], sides[False]):
            loss = loss + r_loss + g_loss
        losses[name] = loss
    return losses
