"""ONNX export: ONNX Runtime gives PyTorch's audio for every model shape family (small widths: BigVGAN v1,
v2, resblock 2, HiFi-GAN, the demo's pitch source), the graph holds only standard ONNX ops with weight
norm folded, the metadata round-trips, fixed windows, fp16, and `python -m vocoder.export`'s one-line
refusals."""

import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from vocoder.checkpoint import complete_model_config, save_generator  # noqa: E402
from vocoder.chunking import overlap_frames  # noqa: E402
from vocoder.export import cli  # noqa: E402
from vocoder.models import Generator  # noqa: E402
from vocoder.onnx_export import ExportError, export_onnx, read_metadata  # noqa: E402

MEL = dict(sampling_rate=8000, n_fft=64, num_mels=20, hop_size=16, win_size=64, fmin=0, fmax=None)
SMALL = dict(num_mels=20, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8], upsample_initial_channel=16,
             resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3], [1, 3]], init="torch")
FAMILIES = {  # the shipped models' shapes at small width
    "v1": dict(resblock="1", activation="snake", snake_logscale=False, use_tanh_at_final=True, use_bias_at_final=True),
    "v2": dict(resblock="1", activation="snakebeta", snake_logscale=True, use_tanh_at_final=False,
               use_bias_at_final=False),
    "resblock2": dict(resblock="2", activation="snakebeta", snake_logscale=True, use_tanh_at_final=False,
                      use_bias_at_final=False),
    "hifigan": dict(resblock="2", activation="leaky_relu", resblock_dilation_sizes=[[1, 2], [2, 6]],
                    use_tanh_at_final=True, use_bias_at_final=True),  # HiFi-GAN V3's shape: no anti-aliasing
    "demo": dict(resblock="2", activation="snakebeta", snake_logscale=True, use_tanh_at_final=False,
                 use_bias_at_final=False, pitch_source=dict(sampling_rate=8000, harmonics=4, predictor_channels=8,
                                                            predictor_layers=1, bins=32)),
}
FRAMES = (1, 3, 40, 133)  # 1 and 3: shorter than the receptive field


def small_generator(family: str, seed: int = 0) -> Generator:
    """A small generator of `family` with audible random weights and Snake parameters away from 1."""
    torch.manual_seed(seed)
    generator = Generator.from_config({**SMALL, **FAMILIES[family]})
    logscale = generator.config.get("snake_logscale", True)
    with torch.no_grad():
        for name, p in generator.named_parameters():
            if name.endswith((".alpha", ".beta")):
                noise = 0.3 * torch.randn_like(p)
                p.copy_(noise if logscale else (1 + noise).abs() + 0.1)
    return generator.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{family: (generator, path of its fp32 ONNX file)}."""
    folder = tmp_path_factory.mktemp("onnx")
    return {family: (g := small_generator(family), export_onnx(g, MEL, folder / f"{family}.onnx"))
            for family in FAMILIES}


def session(path) -> "ort.InferenceSession":
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_runtime_gives_pytorch_audio(exported, family):
    generator, path = exported[family]
    sess = session(path)
    torch.manual_seed(1)
    assert overlap_frames(generator) > 3
    for frames in FRAMES:
        mel = torch.randn(2, MEL["num_mels"], frames) - 4
        outputs = sess.run(None, {"mel": mel.numpy()})
        audio = outputs[0]
        assert audio.shape == (2, frames * 16) and audio.dtype == np.float32
        with torch.no_grad():
            if generator.conditioning is None:
                expected = generator(mel)[:, 0]
            else:  # F0 is rounded to a 1/256 Hz grid: a frame at a rounding edge may land one step apart
                f0, voiced = generator.conditioning.predictor.predict(mel)
                got_f0, got_voiced = (torch.from_numpy(o) for o in outputs[1:])
                assert (got_f0 - f0).abs().max() <= 1 / 256 and (got_f0 != f0).float().mean() < 0.05
                assert (got_voiced != voiced).float().mean() < 0.05
                expected = generator(mel, condition={"f0": got_f0, "voiced": got_voiced})[:, 0]
        assert expected.abs().max() > 0.05  # audible, so the comparison means something
        assert np.abs(audio - expected.numpy()).max() <= 1e-4, (family, frames)


def test_graph_is_plain_onnx_with_folded_weights_and_metadata(exported):
    generator, path = exported["v2"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    domains = {node.domain for node in model.graph.node} | {f.domain for f in model.functions}
    assert domains <= {"", "ai.onnx"}, domains  # no custom (Triton/vocoder) ops
    assert not model.functions
    names = [init.name for init in model.graph.initializer]
    assert names and not any("parametrizations" in n or "weight_g" in n or "weight_v" in n for n in names)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == MEL["num_mels"] and isinstance(dims[2], str)
    meta = read_metadata(path)
    assert meta["model"] == complete_model_config({"generator": generator.config, "mel": MEL})
    assert (meta["sampling_rate"], meta["hop_size"], meta["num_mels"]) == (8000, 16, 20)
    assert (meta["frames"], meta["batch"], meta["precision"]) == ("dynamic", "dynamic", "fp32")
    assert meta["overlap_frames"] == overlap_frames(generator)
    custom = session(path).get_modelmeta().custom_metadata_map  # what a user without this package reads
    import json
    assert json.loads(custom["vocoder.model"]) == meta["model"]


def test_fixed_window_and_refusals(tmp_path):
    generator = small_generator("resblock2", seed=3)
    window = 4 + 2 * overlap_frames(generator)
    path = export_onnx(generator, MEL, tmp_path / "window.onnx", frames=window, batch=1)
    assert read_metadata(path)["frames"] == window
    mel = torch.randn(1, MEL["num_mels"], window) - 4
    sess = session(path)
    with torch.no_grad():
        assert np.abs(sess.run(None, {"mel": mel.numpy()})[0] - generator(mel)[:, 0].numpy()).max() <= 1e-4
    with pytest.raises(Exception):
        sess.run(None, {"mel": mel[..., :-1].numpy()})  # a static engine takes exactly its window
    before = path.read_bytes()
    with pytest.raises(ExportError, match="exists; it is kept"):
        export_onnx(generator, MEL, path)
    assert path.read_bytes() == before
    with pytest.raises(ExportError, match="pitch source"):
        export_onnx(small_generator("demo"), MEL, tmp_path / "d.onnx", frames=window)
    with pytest.raises(ExportError, match="precision"):
        export_onnx(generator, MEL, tmp_path / "p.onnx", precision="bf16")
    with pytest.raises(ExportError, match="hop_size"):
        export_onnx(generator, {**MEL, "hop_size": 32}, tmp_path / "h.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["window.onnx"]


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["vocoder.export", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli()
    return exit_info.value.code, capsys.readouterr().err


def test_cli_refuses_bad_checkpoint_and_output_in_one_line(tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "model.pt"
    save_generator(checkpoint, small_generator("v2"), MEL)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "kept.onnx").write_bytes(b"the user's file")
    cases = [
        ([f"checkpoint={tmp_path / 'missing.pt'}", f"output={tmp_path / 'a.onnx'}"], "missing.pt does not exist"),
        ([f"checkpoint={tmp_path / 'broken.pt'}", f"output={tmp_path / 'a.onnx'}"], "broken.pt is not a checkpoint"),
        ([f"checkpoint={checkpoint}", f"output={tmp_path}"], "is a folder"),
        ([f"checkpoint={checkpoint}", f"output={tmp_path / 'kept.onnx'}"], "exists; it is kept"),
        ([f"checkpoint={checkpoint}", f"output={tmp_path / 'a.wav'}"], "ending in .onnx"),
        ([f"checkpoint={checkpoint}", f"output={tmp_path / 'kept.onnx' / 'a.onnx'}"], "is a file, not a folder"),
        ([f"checkpoint={checkpoint}", f"output={tmp_path / 'a.onnx'}", "frames=0"], "frames must be a positive"),
        ([f"checkpoint={tmp_path / 'missing.pt'}", f"output={tmp_path / 'a.onnx'}", "precision=bf16"],
         "precision must be one of fp32, fp16"),  # options are checked before the checkpoint is read
        ([f"checkpoint={checkpoint}"], "set output=..."),
        ([f"checkpoint={checkpoint}", f"output={tmp_path / 'a.onnx'}", "precison=fp16"], "precison"),
    ]
    for args, expected in cases:
        code, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2 and err.count("\n") == 1 and err.startswith("vocoder.export: error: "), (args, err)
        assert expected in err, (args, err)
    assert (tmp_path / "kept.onnx").read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pt", "kept.onnx", "model.pt"]


def test_fp16_export_computes_in_half_and_runs_in_onnx_runtime_cpu(tmp_path):
    generator = small_generator("demo", seed=4)
    path = export_onnx(generator, MEL, tmp_path / "half.onnx", precision="fp16")
    model = onnx.load(str(path))
    convs = {node.input[1] for node in model.graph.node if node.op_type in ("Conv", "ConvTranspose")}
    kinds = {init.name: init.data_type for init in model.graph.initializer if init.name in convs}
    learnt = {name: kind for name, kind in kinds.items()  # the pitch predictor stays fp32 (its F0 is rounded)
              if name.startswith("generator.") and not name.startswith("generator.conditioning.predictor.")}
    assert learnt and set(learnt.values()) == {onnx.TensorProto.FLOAT16}, learnt
    # the anti-aliased activations compute in fp32, as the fused kernels do: their filters stay fp32
    assert set(kinds.values()) - set(learnt.values()) <= {onnx.TensorProto.FLOAT}
    assert read_metadata(path)["precision"] == "fp16"
    mel = torch.randn(2, MEL["num_mels"], 50) - 4
    audio = session(path).run(None, {"mel": mel.numpy()})[0]
    with torch.no_grad():
        expected = generator(mel)[:, 0].numpy()
    assert audio.dtype == np.float32 and np.abs(audio - expected).max() < 1e-2
