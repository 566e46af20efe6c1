"""View any tensor as dense (outer, channels, inner) without copying when its memory allows it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class ChannelLayout:
    """`dense` is a contiguous (outer, channels, inner) view (or copy) of the original tensor."""

    dense: Tensor
    perm: tuple[int, ...]  # the original axes in memory order
    shape: tuple[int, ...]  # the original shape permuted by `perm`

    @property
    def outer(self) -> int:
        return self.dense.shape[0]

    @property
    def channels(self) -> int:
        return self.dense.shape[1]

    @property
    def inner(self) -> int:
        return self.dense.shape[2]

    def order(self) -> tuple[int, ...]:
        """Memory order of the axes that have more than one element (what decides the flat index)."""
        return tuple(d for d, s in zip(self.perm, self.shape) if s > 1)


def memory_order(x: Tensor) -> tuple[int, ...]:
    """Axes sorted from the largest stride to the smallest; ties keep the axis order."""
    return tuple(sorted(range(x.ndim), key=lambda d: (-x.stride(d), d)))


def channel_layout(x: Tensor, dim: int) -> ChannelLayout:
    """Flatten `x` around axis `dim` in its memory order; channels-last and transposed views
    are not copied, tensors with gaps (slices with steps) are copied once."""
    dim = dim % x.ndim
    perm = memory_order(x)
    xp = x.permute(perm)
    if not xp.is_contiguous():
        perm = tuple(range(x.ndim))
        xp = x.contiguous()
    pos = perm.index(dim)
    shape = tuple(xp.shape)
    dense = xp.reshape(math.prod(shape[:pos]), shape[pos], math.prod(shape[pos + 1 :]))
    return ChannelLayout(dense, perm, shape)


def dense_like(t: Tensor, layout: ChannelLayout) -> Tensor:
    """Bring a tensor of the original shape (a gradient, say) into `layout`'s dense form."""
    return t.permute(layout.perm).contiguous().view(layout.dense.shape)


def restore(flat: Tensor, layout: ChannelLayout) -> Tensor:
    """Give a tensor in `layout`'s dense form the original shape (as a view)."""
    inverse = [layout.perm.index(d) for d in range(len(layout.perm))]
    return flat.view(layout.shape).permute(inverse)


def write_target(out: Tensor, layout: ChannelLayout, dim: int) -> tuple[Tensor, bool]:
    """A dense buffer to write results into for output `out`: its own memory when `out`'s memory
    order matches `layout`'s (returns True), else a scratch tensor to copy back (returns False)."""
    target = channel_layout(out, dim)
    if target.order() == layout.order() and target.dense.data_ptr() == out.data_ptr():
        return target.dense, True
    return layout.dense.new_empty(layout.dense.shape, dtype=out.dtype), False
