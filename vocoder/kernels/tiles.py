"""Launch geometry of the fused kernels as frozen values passed to the launchers; the defaults are the
tiles that ship (picked on an H100 by `vocoder.bench.snake_tiles` and `vocoder.bench.anti_alias_check --sweep`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


def _check_fields(tiles: object, any_positive_names: tuple[str, ...] = ()) -> None:
    """Every field a positive power of two (Triton's tile sizes and warp counts must be), except
    those in `any_positive_names`: any positive integer."""
    for f in fields(tiles):
        value = getattr(tiles, f.name)
        any_positive = f.name in any_positive_names
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or \
                (not any_positive and value & (value - 1)):
            kind = "a positive integer" if any_positive else "a positive power of two"
            raise ValueError(f"{type(tiles).__name__}.{f.name} must be {kind}, got {value!r}")


@dataclass(frozen=True)
class SnakeTiles:
    """Snake / SnakeBeta kernels. ROWS tiling ((B, C, T) audio: the axes after the channel axis hold
    at least `rows_min_inner` elements): (elements, warps) per program forward, backward for fp32
    inputs, backward for fp16/bf16 inputs. COLUMNS tiling (channels-last and other short rows): an
    (outer × channel·inner) tile of `column_rows` × `column_width` elements."""

    forward_block: int = 2048
    forward_warps: int = 4
    backward_block: int = 1024  # fp32: the sin and cos per element make small tiles fastest
    backward_warps: int = 4
    backward_block_16bit: int = 2048
    backward_warps_16bit: int = 8
    rows_min_inner: int = 256
    column_rows: int = 32
    column_width: int = 128

    def __post_init__(self) -> None:
        _check_fields(self, ("rows_min_inner",))

    def backward_tile(self, dtype: torch.dtype) -> tuple[int, int]:
        """(elements, warps) per program of the ROWS backward for inputs of `dtype`."""
        if dtype in (torch.float16, torch.bfloat16):
            return self.backward_block_16bit, self.backward_warps_16bit
        return self.backward_block, self.backward_warps


@dataclass(frozen=True)
class AntiAliasTiles:
    """Anti-aliased activation kernels: a program computes `rows` windows of `width` positions
    (each window overlapping its neighbour by the filters' halo) with `warps` warps. width = 32
    keeps a window in one warp, so the `tl.gather` shifts are warp shuffles; the halo of a filter
    (6 positions for 12 taps) must be at most width / 2."""

    rows: int = 16
    width: int = 32
    warps: int = 4

    def __post_init__(self) -> None:
        _check_fields(self)

    def outputs_per_program(self, halo: int) -> int:
        """Outputs one program writes for a stencil of `halo` positions."""
        if halo > self.width // 2:
            raise ValueError(f"AntiAliasTiles(width={self.width}) is too narrow for a filter whose "
                             f"halo is {halo} positions (at most width / 2)")
        return self.rows * (self.width - halo)


def as_ints(tiles: SnakeTiles | AntiAliasTiles) -> list[int]:
    """The fields in order: how a tiling crosses the torch.library op boundary (`type(tiles)(*ints)`)."""
    return [getattr(tiles, f.name) for f in fields(tiles)]
