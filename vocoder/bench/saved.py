"""What autograd keeps for backward, by kind, on any device: a ledger of saved tensors.

Every tensor autograd saves passes through a pack hook. The ledger counts each storage once while
any saved reference to it is alive (they die with the graph after backward), files it under the kind
of the modules running when it was saved, and keeps the by-kind split from the moment the total
peaked. Storages of `resident` tensors (parameters: in memory anyway) are not counted. Tensors kept
alive other ways (activation checkpointing's block inputs, gradients, optimiser state) are not seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType

import torch
from torch import Tensor, nn
from torch.nn.modules import module as module_hooks

# (modules entered and not yet left, outermost first; the saved tensor) → kind
Classifier = Callable[[tuple[nn.Module, ...], Tensor], str]


def innermost_type(stack: tuple[nn.Module, ...], tensor: Tensor) -> str:
    """The default kind: the class name of the innermost running module ('none' outside modules)."""
    return type(stack[-1]).__name__ if stack else "none"


class _Saved:
    """What the pack hook returns: holds the tensor; its release tells the ledger."""

    __slots__ = ("ledger", "key", "tensor")

    def __init__(self, ledger: SavedTensorLedger, key: int, tensor: Tensor) -> None:
        self.ledger, self.key, self.tensor = ledger, key, tensor

    def __del__(self) -> None:
        self.ledger._release(self.key)


class SavedTensorLedger:
    """Context manager: `with SavedTensorLedger(classify) as ledger: loss = f(x); loss.backward()`.

    `ledger.peak_bytes` / `ledger.peak_by_kind` hold the largest total of live saved bytes and its
    split; `ledger.live_bytes` what is still held (0 once every graph is freed).
    """

    def __init__(self, classify: Classifier = innermost_type, resident: Iterable[Tensor] = ()) -> None:
        self.classify = classify
        self.resident = {t.untyped_storage().data_ptr() for t in resident}
        self.live: dict[int, list] = {}  # storage pointer → [kind, bytes, saved references]
        self.by_kind: Counter[str] = Counter()
        self.peak_by_kind: dict[str, int] = {}
        self.peak_bytes = 0
        self._stack: list[nn.Module] = []
        self._handles: list = []
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    @property
    def live_bytes(self) -> int:
        return sum(self.by_kind.values())

    # ---------------------------------------------------------------- hooks

    def _enter_module(self, module: nn.Module, args: object) -> None:
        self._stack.append(module)

    def _leave_module(self, module: nn.Module, args: object, output: object) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()

    def _pack(self, tensor: Tensor) -> object:
        if tensor.layout != torch.strided or tensor.device.type == "meta":
            return tensor
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in self.resident:
            return tensor
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [self.classify(tuple(self._stack), tensor), size, 0]
            self.by_kind[entry[0]] += size
            total = self.live_bytes
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_by_kind = total, dict(self.by_kind)
        entry[2] += 1
        return _Saved(self, key, tensor)

    @staticmethod
    def _unpack(packed: object) -> Tensor:
        return packed.tensor if isinstance(packed, _Saved) else packed

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] == 0:
            del self.live[key]
            self.by_kind[entry[0]] -= entry[1]

    # ---------------------------------------------------------------- context

    def __enter__(self) -> SavedTensorLedger:
        self._handles = [module_hooks.register_module_forward_pre_hook(self._enter_module),
                         module_hooks.register_module_forward_hook(self._leave_module, always_call=True)]
        self._hooks.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._hooks.__exit__(kind, error, trace)
        for handle in self._handles:
            handle.remove()
        self._stack.clear()
