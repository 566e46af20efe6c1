"""`vocoder.cuda_graphs`: a window shape runs eagerly once, is captured on its second call and replayed
after; the cache keeps the most recently used graphs up to its cap; calls it cannot graph stay eager.
On CUDA: `Vocoder` replays give eager's audio to 1e-6 at the same precision, chunked and streamed."""

import pytest
import torch

from vocoder import Vocoder
from vocoder.bench.train import load_config
from vocoder.cuda_graphs import GraphedModule
from vocoder.models import Generator

HAS_CUDA = torch.cuda.is_available()


class FakeCapture:
    """Records captures; its replay runs the function again (as a graph replay would compute)."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, function, example):
        self.shapes.append(tuple(example["0"].shape))
        return lambda arguments: function(**arguments) + 0


def graphed(max_graphs: int = 2):
    calls = []

    def module(x, scale=None):
        calls.append(tuple(x.shape))
        return x * 2 if scale is None else x * scale

    capture = FakeCapture()
    return GraphedModule(module, max_graphs=max_graphs, capture=capture, device_types=("cpu",)), capture, calls


def test_a_shape_is_captured_on_its_second_call_and_replayed_after():
    g, capture, _ = graphed()
    x = torch.randn(1, 3, 5)
    for _ in range(4):
        assert torch.equal(g(x), x * 2)
    assert (g.eager_calls, g.captures, g.replays) == (1, 1, 3)  # the capturing call replays too
    assert capture.shapes == [(1, 3, 5)]


def test_the_cache_keeps_the_most_recently_used_graphs_up_to_its_cap():
    g, capture, _ = graphed(max_graphs=2)
    a, b, c = torch.randn(1, 3, 5), torch.randn(1, 3, 6), torch.randn(2, 3, 5)
    for x in (a, a, b, b, a, c, c):  # c evicts b, the least recently used (a was replayed after b)
        g(x)
    assert capture.shapes == [(1, 3, 5), (1, 3, 6), (2, 3, 5)]
    assert len(g.graphs) == 2
    g(a)
    assert len(capture.shapes) == 3  # a is still there
    g(b)
    assert len(capture.shapes) == 3 and g.eager_calls == 4  # b was dropped: eager again, captured next time
    g(b)
    assert capture.shapes[-1] == (1, 3, 6) and len(g.graphs) == 2


def test_shapes_seen_once_are_remembered_within_a_bound():
    g, capture, _ = graphed(max_graphs=1)
    for n in range(1, 20):
        g(torch.randn(1, 1, n))
    assert len(g.seen) == 4 and capture.shapes == []


def test_keyword_tensors_are_part_of_the_signature_and_other_arguments_stay_eager():
    g, capture, _ = graphed()
    x = torch.randn(1, 3, 5)
    for _ in range(3):
        assert torch.equal(g(x, scale=torch.tensor(3.0)), x * 3)
    assert capture.shapes == [(1, 3, 5)]
    for _ in range(3):
        assert torch.equal(g(x, scale=3.0), x * 3)  # not a tensor: eager every time
    assert capture.shapes == [(1, 3, 5)] and g.eager_calls == 4


def test_none_and_dicts_of_tensors_are_graphed_with_their_layout():
    calls = []

    def module(x, condition=None):
        calls.append(condition)
        return x if condition is None else x * condition["scale"] + condition["shift"]

    capture = FakeCapture()
    g = GraphedModule(module, capture=capture, device_types=("cpu",))
    x, condition = torch.randn(1, 3, 5), {"scale": torch.tensor(2.0), "shift": torch.tensor(1.0)}
    for _ in range(3):
        assert torch.equal(g(x, condition), x * 2 + 1)
        assert torch.equal(g(x, None), x)
    assert capture.shapes == [(1, 3, 5), (1, 3, 5)] and len(g.graphs) == 2  # one graph per layout
    other = {"scale": torch.tensor(3.0), "shift": torch.tensor(0.0)}
    assert torch.equal(g(x, other), x * 3)  # same layout and shapes: replayed with the new values


def test_tensors_off_the_graph_device_stay_eager():
    module = GraphedModule(lambda x: x + 1, capture=FakeCapture())  # CUDA only, as in Vocoder
    for _ in range(3):
        module(torch.zeros(2))
    assert module.captures == 0 and module.eager_calls == 3


def test_a_failed_capture_falls_back_to_eager_for_good():
    def failing(function, example):
        raise RuntimeError("operation not permitted when stream is capturing")

    g = GraphedModule(lambda x: x + 1, capture=failing, device_types=("cpu",))
    x = torch.zeros(2)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        for _ in range(2):
            assert torch.equal(g(x), x + 1)
    assert torch.equal(g(x), x + 1) and g.captures == 0 and g.eager_calls == 3


def test_bad_cap_is_refused():
    with pytest.raises(ValueError, match="max_graphs must be >= 1"):
        GraphedModule(lambda x: x, max_graphs=0)


def tiny_vocoder(**options) -> Vocoder:
    torch.manual_seed(0)
    return Vocoder(Generator.from_config(load_config("model", "tiny")), load_config("mel", "24khz_100band"), **options)


def test_graphs_are_off_on_the_cpu_and_cannot_be_asked_for_there():
    assert tiny_vocoder(device="cpu").run_generator is not None
    assert not isinstance(tiny_vocoder(device="cpu").run_generator, GraphedModule)
    with pytest.raises(ValueError, match=r"^cuda_graphs=True needs a CUDA device, got device=cpu$"):
        tiny_vocoder(device="cpu", cuda_graphs=True)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_replayed_windows_equal_eager_on_cuda(precision):
    eager = tiny_vocoder(device="cuda", precision=precision, cuda_graphs=False, chunk_frames=64)
    graphs = tiny_vocoder(device="cuda", precision=precision, chunk_frames=64)
    assert isinstance(graphs.run_generator, GraphedModule)
    mels = [torch.randn(100, n, device="cuda") - 5 for n in (300, 300, 300, 70)]
    for mel in mels:  # windows of two lengths: eager once, captured, then replayed
        ref, out = eager(mel), graphs(mel)
        assert (out - ref).abs().max().item() <= 1e-6
    assert graphs.run_generator.captures >= 1 and graphs.run_generator.replays >= 1
    chunks = list(mels[0].split(16, dim=-1))
    for _ in range(2):  # the second stream replays the shapes the first one captured
        pieces, ref = list(graphs.stream(chunks, piece_frames=16)), list(eager.stream(chunks, piece_frames=16))
        assert (torch.cat(pieces) - torch.cat(ref)).abs().max().item() <= 1e-6
