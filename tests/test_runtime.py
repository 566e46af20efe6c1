"""`vocoder.runtime`: one device resolution and one set of precisions for inference, training and
the benchmarks; errors name the argument."""

import pytest
import torch

from vocoder.runtime import PRECISIONS, autocast, check_precision, conv_precision, resolve_device, set_cudnn_benchmark
from vocoder.training.loop import TrainOptions
from vocoder.training.step import GanStep

HAS_CUDA = torch.cuda.is_available()


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu", 0)) == torch.device("cpu", 0)
    assert resolve_device("auto") == torch.device("cuda" if HAS_CUDA else "cpu")
    for bad in ("gpu", "cpu:1", "cuda:x", ""):
        with pytest.raises(ValueError, match=rf"^train.device must be one of auto, cpu, cuda \(or cuda:N\), got {bad!r}"):
            resolve_device(bad, name="train.device")


@pytest.mark.skipif(HAS_CUDA, reason="checks the error without a CUDA device")
def test_cuda_without_a_cuda_device_names_the_argument():
    with pytest.raises(ValueError, match=r"^--device=cuda:1 but no CUDA device is available; use --device=cpu or auto$"):
        resolve_device("cuda:1", name="--device")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_index():
    assert resolve_device("cuda", 0) == torch.device("cuda", 0) and resolve_device("cuda:0", 3) == torch.device("cuda", 0)
    before = torch.backends.cudnn.conv.fp32_precision
    with conv_precision("fp32", torch.device("cuda")):
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    with conv_precision("tf32", torch.device("cuda")):
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert torch.backends.cudnn.conv.fp32_precision == before


def test_precisions_are_one_set_for_inference_and_training():
    assert tuple(PRECISIONS) == ("fp32", "tf32", "bf16", "fp16")  # the concrete ones; "auto" resolves to one
    for name in PRECISIONS:
        check_precision(name)
    with pytest.raises(ValueError, match=r"^precision must be one of auto, fp32, tf32, bf16, fp16, got 'fp8'$"):
        check_precision("fp8")
    with pytest.raises(ValueError, match=r"^train.precision=fp16 is not supported for training \(it needs loss scaling\)"):
        TrainOptions(precision="fp16")
    with pytest.raises(ValueError, match=r"^precision=fp16 is not supported for training"):
        GanStep(torch.nn.Conv1d(1, 1, 1), {}, torch.nn.Identity(), torch.nn.Identity(), precision="fp16")
    for name in ("fp32", "tf32", "bf16"):
        TrainOptions(precision=name)


def test_autocast_and_conv_precision_on_the_cpu():
    a = torch.randn(4, 4)
    with autocast("bf16", torch.device("cpu")):
        assert (a @ a).dtype == torch.bfloat16
    for name in ("fp32", "tf32"):
        with autocast(name, torch.device("cpu")), conv_precision(name, torch.device("cpu")):
            assert (a @ a).dtype == torch.float32


@pytest.fixture
def cudnn_benchmark_restored():
    before = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = before


def test_cudnn_benchmark_is_an_option_of_training_and_inference(cudnn_benchmark_restored, tmp_path):
    """train.cudnn_benchmark (default on: fixed segment shapes) and infer's cudnn_benchmark= (default off)
    set torch.backends.cudnn.benchmark; a value that is no boolean names its argument."""
    from model_configs import model_config, save_tiny_generator

    from vocoder.infer import run

    assert TrainOptions().cudnn_benchmark is True and TrainOptions(cudnn_benchmark="no").cudnn_benchmark is False
    with pytest.raises(ValueError, match="train.cudnn_benchmark"):
        TrainOptions(cudnn_benchmark="sometimes")
    for enabled in (True, False):
        set_cudnn_benchmark(enabled)
        assert torch.backends.cudnn.benchmark is enabled
    ckpt = save_tiny_generator(tmp_path / "g.pt")
    torch.save(torch.randn(model_config("tiny")["num_mels"], 6), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="cudnn_benchmark"):
        run(str(ckpt), str(tmp_path / "x.pt"), str(tmp_path / "out"), cudnn_benchmark="sometimes")
    run(str(ckpt), str(tmp_path / "x.pt"), str(tmp_path / "out"), device="cpu", cudnn_benchmark=True)
    assert torch.backends.cudnn.benchmark is True


def test_auto_precision_is_fp32_on_the_cpu_and_tf32_on_cuda():
    from vocoder.runtime import PRECISION_NAMES, resolve_precision

    assert PRECISION_NAMES == ("auto", "fp32", "tf32", "bf16", "fp16")
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "tf32"  # by device type: no CUDA device needed
    for name in PRECISIONS:
        assert resolve_precision(name, torch.device("cuda")) == name == resolve_precision(name, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"^--precision must be one of auto, fp32, tf32, bf16, fp16, got 'fp8'$"):
        resolve_precision("fp8", torch.device("cpu"), "--precision")


def test_auto_is_the_default_of_the_vocoder_and_of_inference():
    import inspect

    from omegaconf import OmegaConf

    from model_configs import mel_config, model_config
    from vocoder import Vocoder
    from vocoder.infer import run
    from vocoder.models import Generator

    for function in (Vocoder.__init__, Vocoder.from_checkpoint, Vocoder.from_pretrained, run):
        assert inspect.signature(function).parameters["precision"].default == "auto"
    assert OmegaConf.load(__import__("vocoder").__path__[0] + "/configs/infer.yaml").precision == "auto"
    voc = Vocoder(Generator.from_config(model_config("tiny")), mel_config("tiny"), device="cpu")
    assert voc.precision == "fp32" and voc.dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_auto_precision_on_cuda_runs_tf32_convolutions():
    from model_configs import mel_config, model_config
    from vocoder import Vocoder
    from vocoder.models import Generator

    voc = Vocoder(Generator.from_config(model_config("tiny")), mel_config("tiny"), device="cuda")
    assert voc.precision == "tf32"
    with conv_precision("auto", torch.device("cuda")):
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
