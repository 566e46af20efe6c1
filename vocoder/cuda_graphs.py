"""CUDA graphs for inference: a callable that runs a module eagerly the first time it sees an input
shape, captures a CUDA graph of it the second time, and replays that graph from then on.

Inference windows come in few shapes (chunked: `chunk_frames` plus overlaps; streaming: W + 2·O),
so a handful of graphs serve a whole service, and replaying one launches the thousands of small
kernels of a generator call at once instead of one by one from Python. A shape seen once (the last,
shorter window of a stream, say) stays eager: its eager run is also the warm-up that a capture needs
(cuDNN and Triton pick their kernels outside the graph). At most `max_graphs` graphs are kept,
the least recently used one is dropped first, so the memory their static buffers and private pools
hold stays bounded.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor, nn

# a capture: (function, example arguments as a dict of tensors) → a replay: arguments → output
Capture = Callable[[Callable[..., Tensor], dict[str, Tensor]], Callable[[dict[str, Tensor]], Tensor]]


def capture_cuda_graph(function: Callable[..., Tensor], example: dict[str, Tensor]) -> Callable[[dict[str, Tensor]], Tensor]:
    """Capture `function(**example)` into a CUDA graph with static copies of the arguments; the replay
    copies new arguments of the same shapes into them, replays, and returns a copy of the output."""
    static = {name: value.clone() for name, value in example.items()}
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # a warm-up on a side stream, as graph capture asks
        function(**static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = function(**static)

    def replay(arguments: dict[str, Tensor]) -> Tensor:
        for name, value in arguments.items():
            static[name].copy_(value)
        graph.replay()
        return output.clone()

    replay.graph = graph  # keeps the graph (and its memory pool) alive with the replay
    return replay


Layout = tuple  # how a call's arguments nest: per positional argument None, "tensor" or a dict's keys


def flatten(args: tuple, kwargs: dict[str, Any]) -> tuple[Layout, dict[str, Tensor]] | None:
    """A call's arguments as (layout, named tensors): positional and keyword arguments may be tensors,
    None, or dicts of tensors; None for anything else (such a call is not graphed)."""
    tensors: dict[str, Tensor] = {}
    layout = []
    for name, value in [*((str(i), a) for i, a in enumerate(args)), *sorted(kwargs.items())]:
        if value is None:
            layout.append((name, None))
        elif isinstance(value, Tensor):
            layout.append((name, "tensor"))
            tensors[name] = value
        elif isinstance(value, dict) and all(isinstance(v, Tensor) for v in value.values()):
            layout.append((name, tuple(value)))
            tensors.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            return None
    return tuple(layout), tensors


def unflatten(layout: Layout, tensors: dict[str, Tensor]) -> tuple[list, dict[str, Any]]:
    """The (args, kwargs) that `flatten` took apart."""
    args, kwargs = [], {}
    for name, kind in layout:
        value = None if kind is None else tensors[name] if kind == "tensor" else {k: tensors[f"{name}.{k}"] for k in kind}
        if name.isdigit():
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


class GraphedModule:
    """`module(...)` through CUDA graphs, one per call signature (argument layout, shapes, dtypes, devices).

    Arguments may be tensors, None, or dicts of tensors, all tensors on one device of `device_types`;
    other calls run eagerly. A signature is captured on its second call (the first runs eagerly and
    warms up) and replayed from then on; the `max_graphs` most recently used graphs are kept. A capture
    that fails (something in the module cannot be captured) leaves the module eager for good, with a
    warning. `capture` makes the graph and `device_types` are where it applies (parameters so that the
    caching policy can be tested without a GPU). The numeric context (autocast, cuDNN's TF32 setting)
    is the caller's and must not change between calls of one instance.
    """

    def __init__(self, module: nn.Module | Callable[..., Tensor], max_graphs: int = 8,
                 capture: Capture = capture_cuda_graph, device_types: tuple[str, ...] = ("cuda",)) -> None:
        if int(max_graphs) < 1:
            raise ValueError(f"max_graphs must be >= 1, got {max_graphs}")
        self.module, self.max_graphs, self.capture = module, int(max_graphs), capture
        self.device_types = device_types
        self.graphs: OrderedDict[Hashable, Callable[[dict[str, Tensor]], Tensor]] = OrderedDict()
        self.seen: OrderedDict[Hashable, None] = OrderedDict()  # signatures run once, most recent last
        self.captures = self.replays = self.eager_calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        flat = flatten(args, kwargs)
        key = None if flat is None else self.signature(*flat)
        if key is None:
            self.eager_calls += 1
            return self.module(*args, **kwargs)
        layout, tensors = flat
        replay = self.graphs.get(key)
        if replay is None:
            if key not in self.seen:
                self.remember(key)
                self.eager_calls += 1
                return self.module(*args, **kwargs)
            del self.seen[key]
            try:
                replay = self.capture(lambda **named: self.call(layout, named), tensors)
            except RuntimeError as error:  # something in the module cannot be captured: stay eager
                warnings.warn(f"CUDA graph capture failed, running eagerly from now on: {error}", RuntimeWarning)
                self.device_types = ()
                self.graphs.clear()
                self.eager_calls += 1
                return self.module(*args, **kwargs)
            self.captures += 1
            self.graphs[key] = replay
            while len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(key)
        self.replays += 1
        return replay(tensors)

    def call(self, layout: Layout, tensors: dict[str, Tensor]) -> Tensor:
        args, kwargs = unflatten(layout, tensors)
        return self.module(*args, **kwargs)

    def remember(self, key: Hashable) -> None:
        self.seen[key] = None
        while len(self.seen) > 4 * self.max_graphs:  # bounded too: a stream of one-off shapes
            self.seen.popitem(last=False)

    def signature(self, layout: Layout, tensors: dict[str, Tensor]) -> Hashable | None:
        """The graph key of a call: its layout and each tensor's name, shape, dtype and device; None
        where there is no tensor or the tensors are not all on one device of `device_types`."""
        devices = {v.device for v in tensors.values()}
        if len(devices) != 1 or next(iter(devices)).type not in self.device_types:
            return None
        return layout, tuple((name, tuple(v.shape), v.dtype, v.device) for name, v in tensors.items())

    def clear(self) -> None:
        """Drop every graph (their memory goes back to PyTorch's allocator) and what was seen."""
        self.graphs.clear()
        self.seen.clear()
