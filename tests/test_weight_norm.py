"""`vocoder.layers.weight_norm`: torch's state-dict layout, and `weight_norm_once` (one weight-norm op
per layer however often the weight is used, checkpointed recomputation included; the gradients of
computing it at every use)."""

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as torch_weight_norm
from torch.utils.checkpoint import checkpoint

from vocoder.layers.weight_norm import weight_norm, weight_norm_once

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def count_weight_norms(monkeypatch) -> list[int]:
    calls = []
    real = torch._weight_norm
    monkeypatch.setattr(torch, "_weight_norm", lambda *a: calls.append(1) or real(*a))
    return calls


def net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(weight_norm(nn.Conv1d(3, 5, 3, padding=1)), nn.Tanh(),
                         weight_norm(nn.Conv1d(5, 3, 3, padding=1)))


def test_same_keys_and_weight_as_torchs_weight_norm():
    ours = weight_norm(nn.Conv1d(3, 4, 3))
    theirs = torch_weight_norm(nn.Conv1d(3, 4, 3))
    theirs.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert torch.equal(ours.weight, theirs.weight)


def test_each_weight_is_computed_once_and_the_gradients_are_unchanged(count_weight_norms):
    x = torch.randn(2, 3, 16)
    plain, once = net(), net()

    def uses(model):  # every weight used three times, twice inside a checkpointed region
        y = model(x) + checkpoint(model, x, use_reentrant=False) + checkpoint(model, 2 * x, use_reentrant=False)
        y.square().sum().backward()

    uses(plain)
    assert len(count_weight_norms) == 2 * 5  # 3 forward uses + 2 recomputations, per layer
    count_weight_norms.clear()
    with weight_norm_once(once):
        uses(once)
    assert len(count_weight_norms) == 2
    for p, q in zip(plain.parameters(), once.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-5)
    assert all(p.computed is None for m in once if hasattr(m, "parametrizations") for p in m.parametrizations.weight)


def test_a_changed_parameter_is_computed_afresh(count_weight_norms):
    model = net()
    x = torch.randn(1, 3, 8)
    with weight_norm_once(model):
        before = model(x)
        with torch.no_grad():
            model[0].parametrizations.weight.original0.mul_(2)  # an optimiser step, say
        after = model(x)
        assert len(count_weight_norms) == 2 + 1
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(after, want)
    assert not torch.allclose(before, after)


def test_a_weight_computed_without_a_graph_is_not_reused_for_one_that_needs_it(count_weight_norms):
    model = net()
    with torch.no_grad(), weight_norm_once(model):
        pass
    with torch.no_grad():
        cm = weight_norm_once(model)
        cm.__enter__()
    model(torch.randn(1, 3, 8)).sum().backward()  # grad mode: computed again, with a graph
    cm.__exit__(None, None, None)
    assert len(count_weight_norms) == 2 + 2 + 2
    assert all(p.grad is not None for p in model.parameters())
