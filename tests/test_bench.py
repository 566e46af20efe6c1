"""`vocoder.bench`: the saved-tensor ledger and the peak measurement on cases with known answers, and
every suite run end to end on tiny sizes (table, JSON, CSV and PNG; the figures themselves are not
asserted)."""

import json

import pytest
import torch
from torch import nn

from vocoder.bench import kernels
from vocoder.bench.__main__ import main
from vocoder.bench.measure import peak_mib
from vocoder.bench.saved import SavedTensorLedger
from vocoder.bench.train import Case, Variant, load_config, saved_by_kind

pytestmark = pytest.mark.usefixtures("one_thread")
F32 = 4  # bytes


# ---------------------------------------------------------------- the ledger


def test_a_conv_keeps_its_input_and_parameters_are_not_counted():
    conv = nn.Conv1d(4, 8, 3)
    x = torch.randn(2, 4, 50)
    with SavedTensorLedger(resident=conv.parameters()) as ledger:
        y = conv(x)
        assert ledger.live_bytes == 2 * 4 * 50 * F32
        y.sum().backward()
        assert ledger.live_bytes == 0  # freed with the graph
    assert ledger.peak_bytes == 2 * 4 * 50 * F32 and ledger.peak_by_kind == {"Conv1d": 1600}


def test_without_resident_the_weight_counts_too():
    conv = nn.Conv1d(4, 8, 3, bias=False)
    with SavedTensorLedger() as ledger:
        conv(torch.randn(2, 4, 50)).sum().backward()
    assert ledger.peak_bytes == (2 * 4 * 50 + 8 * 4 * 3) * F32


def test_a_storage_saved_twice_counts_once_and_a_view_counts_its_storage():
    x = torch.randn(1000, requires_grad=True)
    with SavedTensorLedger() as ledger:
        (x * x).sum().backward()  # mul saves both operands: the same storage
    assert ledger.peak_bytes == 1000 * F32
    base = torch.randn(10, 100)
    w = torch.randn(5, requires_grad=True)
    with SavedTensorLedger() as ledger:
        (base[:, :5] * w).sum().backward()  # saves the view; its whole storage stays alive
    assert ledger.peak_bytes == 1000 * F32


def test_peak_is_the_largest_live_total_not_the_sum_over_time():
    a = torch.randn(1000, requires_grad=True)
    b = torch.randn(3000, requires_grad=True)
    with SavedTensorLedger() as ledger:
        a.sin().sum().backward()   # 4000 bytes, freed
        b.sin().sum().backward()   # 12000 bytes, freed
        assert ledger.peak_bytes == 3000 * F32
        ya, yb = a.sin(), b.sin()  # both graphs alive at once
        assert ledger.peak_bytes == 4000 * F32
        (ya.sum() + yb.sum()).backward()
    assert ledger.live_bytes == 0


def test_kinds_follow_the_running_module():
    net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh())
    x = torch.randn(1, 2, 20)
    with SavedTensorLedger(resident=net.parameters()) as ledger:
        (net(x).sum() * 2).backward()
    # conv input 2·20 floats; tanh keeps its output 3·18 floats
    assert ledger.peak_by_kind == {"Conv1d": 40 * F32, "Tanh": 54 * F32}


@pytest.mark.parametrize("op", kernels.OPS)
def test_fused_ops_keep_only_x_where_eager_keeps_several(op, triton_device):
    """The memory claim: a fused op keeps x (α, β and the filters are a few hundred bytes); the
    eager reference, autograd's plain ops, keeps at least 4× as much."""
    device = torch.device(triton_device)
    impls = kernels.implementations(op, device, compiled=False)
    x, a, b, g = kernels.make_inputs(op, (2, 3, 40), torch.float32, device)
    x_bytes = x.numel() * F32
    fused = kernels.saved_bytes(impls["fused"], x, a, b, g)
    assert x_bytes <= fused <= x_bytes + 256
    assert kernels.saved_bytes(impls["eager"], x, a, b, g) >= 4 * x_bytes


def test_generator_step_split_by_kind():
    """A weight-normed tiny generator keeps activation inputs, conv inputs and weight-norm weights;
    nothing is filed under the discriminators or the mel loss."""
    case = Case(load_config("model", "tiny"), load_config("mel", "24khz_100band"), load_config("discriminator", "tiny"),
                Variant(fused=True), device=torch.device("cpu"))
    step, params = case.step("generator", batch=1, segment=1024)
    split = saved_by_kind(step, params)
    assert split["saved_activations"] > 0 and split["saved_conv_inputs"] > 0
    weights = sum(p.numel() for n, p in case.generator.named_parameters() if n.endswith("original1"))
    assert split["saved_weight_norm"] * 2**30 >= weights * F32  # each conv keeps its computed weight
    assert split["saved_discriminators"] == split["saved_mel_loss"] == 0
    parts = sum(v for k, v in split.items() if k.startswith("saved_") and k != "saved_GiB")
    assert parts == pytest.approx(split["saved_GiB"], rel=1e-12)


# ---------------------------------------------------------------- peak memory


def test_peak_is_none_on_the_cpu_and_the_function_still_runs():
    ran = []
    assert peak_mib(lambda: ran.append(1), "cpu") is None and ran == [1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_of_a_known_allocation():
    held = torch.empty(16 * 2**20, dtype=torch.uint8, device="cuda")  # before: not counted

    def work():
        a = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
        b = torch.empty(32 * 2**20, dtype=torch.uint8, device="cuda")
        del a, b
        c = torch.empty(8 * 2**20, dtype=torch.uint8, device="cuda")
        del c

    assert peak_mib(work, "cuda") == 96.0
    del held


# ---------------------------------------------------------------- the suites


def run_suite(tmp_path, capsys, suite: str, *args: str) -> tuple[str, list[dict]]:
    out = tmp_path / suite
    main([suite, "--device", "cpu", "--out", str(out), *args])
    text = capsys.readouterr().out
    rows = json.loads((out / f"{suite}.json").read_text())["rows"]
    assert (out / f"{suite}.csv").read_text().count("\n") == len(rows) + 1
    assert (out / f"{suite}.md").read_text() == text.rstrip("\n") + "\n"
    if suite != "stream":  # a table of a few numbers, no plot
        png = (out / f"{suite}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert text.startswith(f"{suite}: device cpu") and "| " in text
    return text, rows


def test_kernels_suite(tmp_path, capsys):
    text, rows = run_suite(tmp_path, capsys, "kernels", "--quick")
    assert "fused ops plain PyTorch" in text
    assert [(r["op"], r["dtype"], r["impl"]) for r in rows] == [
        (op, dt, impl) for op in kernels.OPS for dt in kernels.DTYPES for impl in ("eager", "fused")]
    assert all(isinstance(r["fwd+bwd_ms"], float) and r["peak_vs_x"] is None for r in rows)


def test_train_suite(tmp_path, capsys):
    variants = ("fused", "eager", "eager+ckpt", "fused+ckpt", "fused+dckpt", "fused+wn-each-use")
    _, rows = run_suite(tmp_path, capsys, "train", "--model", "tiny", "--discriminator", "tiny",
                        "--segments", "2048", "--batch", "1", "--repeats", "1", "--variants", ",".join(variants),
                        "--profile")
    assert [(r["step"], r["variant"]) for r in rows] == [
        (step, v) for step in ("generator", "gan (tiny)") for v in variants]
    assert all(r["kernel_ms"] is None and r["step_vs_kernels"] is None for r in rows)  # no profile on the CPU
    gan = {r["variant"]: r for r in rows if r["step"] != "generator"}
    assert gan["fused"]["saved_discriminators"] > 0 and gan["fused"]["saved_mel_loss"] > 0
    assert gan["fused+dckpt"]["saved_discriminators"] < gan["fused"]["saved_discriminators"] / 2
    generator = {r["variant"]: r for r in rows if r["step"] == "generator"}
    # weight norm computed at each use keeps the same weights as computed once
    assert generator["fused+wn-each-use"]["saved_GiB"] == pytest.approx(generator["fused"]["saved_GiB"])
    # the fused activation keeps less than the eager one, and checkpointing keeps less than either
    assert gan["fused"]["saved_activations"] < gan["eager"]["saved_activations"] / 4
    assert gan["fused+ckpt"]["saved_activations"] < gan["fused"]["saved_activations"]


def test_infer_suite(tmp_path, capsys):
    _, rows = run_suite(tmp_path, capsys, "infer", "--model", "tiny", "--frames", "8,32",
                        "--precisions", "fp32", "--repeats", "1")
    assert [(r["activations"], r["mel_frames"]) for r in rows] == [
        ("fused", 8), ("fused", 32), ("eager", 8), ("eager", 32)]
    assert all(r["kHz"] > 0 and r["peak_MiB"] is None for r in rows)


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "nope"], "no model config 'nope'"),
    (["train", "--steps", "generator,disc"], "unknown --steps/--precisions/--activations value(s): disc"),
    (["train", "--variants", "fused+fast"], "variant 'fused+fast': expected nvidia, or fused or eager followed by +options"),
    (["train", "--variants", "eager+compile+cudagraphs"], "two modes of one option"),
    (["infer", "--activations", "cuda"], "unknown --steps/--precisions/--activations value(s): cuda"),
    (["train", "--segments", "8192,x"], "expected comma-separated integers"),
    (["infer", "--precisions", "fp64"], "fp64"),
    (["infer", "--model", "tiny", "--mel", "22khz_80band"], "model.num_mels=100 but mel.num_mels=80"),
])
def test_bad_arguments_are_named(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--device", "cpu"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_stream_suite(tmp_path, capsys):
    text, rows = run_suite(tmp_path, capsys, "stream", "--model", "tiny", "--stream-frames", "96",
                           "--piece-frames", "16", "--repeats", "1")
    assert [(r["precision"], r["cuda_graphs"], r["piece_frames"]) for r in rows] == [("tf32", False, 16)]
    assert rows[0]["piece_ms"] > 0 and rows[0]["first_audio_ms"] > 0 and "piece_ms" in text


def test_nvidia_variant_runs_nvidias_own_step(tmp_path, capsys):
    pytest.importorskip("bigvgan")
    pytest.importorskip("nnAudio")
    _, rows = run_suite(tmp_path, capsys, "train", "--model", "tiny", "--discriminator", "tiny", "--segments", "2048",
                        "--batch", "1", "--repeats", "1", "--variants", "nvidia")
    assert [(r["step"], r["variant"]) for r in rows] == [("generator", "nvidia"), ("gan (tiny)", "nvidia")]
    assert all(isinstance(r["step_ms"], float) for r in rows)


def test_nvidia_variant_is_skipped_with_a_note_without_bigvgan(tmp_path, capsys, monkeypatch):
    from vocoder.bench import nvidia_train

    monkeypatch.setattr(nvidia_train, "available", lambda: "the nvidia variant needs NVIDIA's BigVGAN package")
    main(["train", "--device", "cpu", "--out", str(tmp_path), "--model", "tiny", "--discriminator", "tiny",
          "--segments", "2048", "--batch", "1", "--repeats", "1", "--variants", "nvidia,fused", "--steps", "generator"])
    rows = json.loads((tmp_path / "train.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["fused"]
    assert "skipping variant nvidia: the nvidia variant needs NVIDIA's BigVGAN package" in capsys.readouterr().err


def test_nvidia_variant_takes_no_options():
    with pytest.raises(ValueError, match="nvidia .NVIDIA's own step. takes no options"):
        Variant.parse("nvidia+ckpt")
    assert Variant.parse("nvidia").nvidia
