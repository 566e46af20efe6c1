"""Test setup: without a CUDA device, Triton kernels run through Triton's CPU interpreter.

TRITON_INTERPRET is read when a kernel is defined, so it is set here, before vocoder is imported.
"""

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def triton_device(monkeypatch) -> str:
    """The device on which the Triton kernels run: CUDA when present, else the CPU interpreter."""
    monkeypatch.setenv("VOCODER_BACKEND", "triton")
    return "cuda" if HAS_CUDA else "cpu"


@pytest.fixture
def torch_backend(monkeypatch) -> None:
    """Force the plain-PyTorch reference path."""
    monkeypatch.setenv("VOCODER_BACKEND", "torch")



@pytest.fixture(autouse=True)
def _no_onednn():
    """oneDNN compiles a kernel for each new conv shape; with the many small shapes of the tests
    that dominates their run time on a CPU."""
    with torch.backends.mkldnn.flags(enabled=False):
        yield


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: as fast for the tiny model, and steady when other
    jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env():
    """A CPU training environment: one process, no process group."""
    from vocoder.training.distributed import setup
    return setup("cpu")


@pytest.fixture(scope="module")
def noise_corpus(tmp_path_factory):
    """`noise_corpus(count)`: a new folder of `count` noise clips of 0.3 s (clip_0.wav, ..., seeds 0, 1, ...)."""
    from test_train import write_noise

    def make(count: int):
        folder = tmp_path_factory.mktemp("corpus")
        for i in range(count):
            write_noise(folder / f"clip_{i}.wav", 7200, seed=i)
        return folder
    return make
