"""`Vocoder.stream`: mel chunks of any size in, audio pieces out as soon as they are final, equal to
one offline call; each frame kept once, windows bounded; bad chunks named; the streaming example."""

import importlib.util
from pathlib import Path

import pytest
import soundfile as sf
import torch

from model_configs import mel_config, model_config

from vocoder import Vocoder
from vocoder.models import Generator

ROOT = Path(__file__).resolve().parents[1]
TINY, TINY_MEL = model_config("tiny"), mel_config("tiny")
# tiny with one narrow AMP block per stage: a receptive field of 11 frames, a few ms per window
SMALL = {**TINY, "upsample_initial_channel": 16, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]]}
HOP = 256

pytestmark = pytest.mark.usefixtures("one_thread")


def make_vocoder(config: dict, seed: int = 0, **options) -> Vocoder:
    torch.manual_seed(seed)
    generator = Generator.from_config({**config, "init": "torch"})
    with torch.no_grad():
        generator.conv_post.parametrizations.weight.original0.mul_(2)  # audible: std ~0.1
    return Vocoder(generator, TINY_MEL, device="cpu", **options)


@pytest.fixture(scope="module")
def small() -> Vocoder:
    return make_vocoder(SMALL)


def mel(frames: int, seed: int = 0, bands: int = 100) -> torch.Tensor:
    return torch.randn(bands, frames, generator=torch.Generator().manual_seed(seed)) - 5


def split(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    assert sum(sizes) == x.shape[-1]
    return list(x.split(sizes, dim=-1))


def random_sizes(total: int, largest: int, seed: int) -> list[int]:
    g, sizes = torch.Generator().manual_seed(seed), []
    while sum(sizes) < total:
        sizes.append(min(total - sum(sizes), int(torch.randint(1, largest + 1, (1,), generator=g))))
    return sizes


class Recorder:
    """Wraps vocode_window: the length of every window the stream sends to the generator."""

    def __init__(self, voc: Vocoder, monkeypatch) -> None:
        self.windows: list[int] = []
        inner = voc.vocode_window

        def vocode_window(mel, *args, **kwargs):
            self.windows.append(mel.shape[-1])
            return inner(mel, *args, **kwargs)
        monkeypatch.setattr(voc, "vocode_window", vocode_window)


def test_overlap_of_the_test_models(small):
    assert small.overlap_frames == 11 and make_vocoder(TINY).overlap_frames == 27


@pytest.mark.parametrize("frames,sizes,width", [
    (150, "random 1..25", 16),      # random sizes, ones among them
    (60, "ones", 4),                # one frame at a time
    (90, "random 1..5", 8),         # every chunk shorter than the receptive field (11 frames)
    (100, "single", 16),            # one chunk holding everything
    (7, "ones", 16),                # the whole mel shorter than one piece and its look-ahead
    (120, "random 1..60", 1),       # a piece per frame
])
def test_stream_equals_offline(small, monkeypatch, frames, sizes, width):
    x = mel(frames, seed=frames)
    expected = small(x)
    assert expected.std() > 0.05
    parts = {"ones": [1] * frames, "single": [frames]}.get(sizes) or \
        [1] + random_sizes(frames - 2, int(sizes.split("..")[1]), seed=width) + [1]  # ones at both ends
    record = Recorder(small, monkeypatch)
    pieces = list(small.stream(split(x, parts), piece_frames=width))
    streamed = torch.cat(pieces)
    assert streamed.shape == expected.shape
    assert (streamed - expected).abs().max().item() <= 1e-5  # measured: 1.5e-7
    # every piece but the last holds exactly `width` frames; the last holds the rest
    assert [p.numel() for p in pieces[:-1]] == [width * HOP] * (len(pieces) - 1)
    assert 0 < pieces[-1].numel() <= (width + small.overlap_frames) * HOP
    # bounded windows; each frame's audio computed once, context only from the overlap
    overlap = small.overlap_frames
    assert len(record.windows) == len(pieces) and max(record.windows) <= width + 2 * overlap
    assert sum(record.windows) <= frames + 2 * overlap * len(pieces)


def test_the_demo_model_streams_exactly():
    voc = make_vocoder(TINY, seed=1)
    x = mel(140, seed=3)
    expected = voc(x)
    streamed = torch.cat(list(voc.stream(split(x, random_sizes(140, 30, seed=2)), piece_frames=32)))
    assert (streamed - expected).abs().max().item() <= 1e-5  # measured: 1.8e-7


def test_too_little_overlap_shows_the_seams(small):
    x = mel(80)
    expected = small(x)
    small.overlap_frames = 2
    try:
        streamed = torch.cat(list(small.stream(split(x, [1] * 80), piece_frames=8)))
    finally:
        small.overlap_frames = 11
    assert (streamed - expected).abs().max().item() > 1e-3


def test_pieces_come_as_soon_as_they_are_final(small):
    """A piece of frames [d, d + W) is yielded right after the chunk that brings frame d + W + O − 1."""
    x, width, overlap = mel(100, seed=5), 10, small.overlap_frames
    sizes = random_sizes(100, 7, seed=1)
    received = []

    def source():
        for chunk in split(x, sizes):
            received.append(received[-1] + chunk.shape[-1] if received else chunk.shape[-1])
            yield chunk

    seen = []
    for i, piece in enumerate(small.stream(source(), piece_frames=width)):
        seen.append(received[-1])
        needed = (i + 1) * width + overlap
        if needed <= 100:  # not the last piece: the first chunk that completes its look-ahead
            assert seen[-1] == next(r for r in received if r >= needed), (i, received)
    assert len(seen) == 9 and seen[-1] == 100  # 8 pieces of 10 frames, then the last 20


def test_empty_streams(small):
    assert list(small.stream([])) == []
    assert list(small.stream(iter(()))) == []
    assert list(small.stream([torch.zeros(100, 0)])) == []
    x = mel(20)
    pieces = list(small.stream([torch.zeros(100, 0), x[:, :5], torch.zeros(100, 0), x[:, 5:]], piece_frames=4))
    assert (torch.cat(pieces) - small(x)).abs().max().item() <= 1e-5


def test_bad_chunks_are_named(small):
    good = mel(30)
    nan = mel(3)
    nan[7, 1] = float("nan")
    for chunks, kind, message in [
        ([good, mel(4, bands=80)], ValueError, r"stream chunk 1: expected 100 mel bands, found 80"),
        ([good, good, nan], ValueError, r"stream chunk 2: 1 of 300 mel values are NaN or Inf"),
        ([good[None]], ValueError,
         r"stream chunk 0: expected a mel of shape \[100, frames\], found shape \(1, 100, 30\)"),
        ([good[0]], ValueError, r"stream chunk 0: expected a mel of shape \[100, frames\], found shape \(30,\)"),
        ([good.T.contiguous()], ValueError, r"stream chunk 0: expected 100 mel bands, found 30 .*transposed"),
        ([good, good.long()], ValueError, r"stream chunk 1: expected a floating-point mel"),
        ([good, [[0.0]]], TypeError, r"stream chunk 1: expected a torch.Tensor .* got a list"),
    ]:
        stream = small.stream(chunks, piece_frames=8)
        pieces = []
        with pytest.raises(kind, match=message):
            for piece in stream:
                pieces.append(piece)
        before = sum(c.shape[-1] for c in chunks[:-1])  # what was final before the bad chunk came out
        assert sum(p.numel() for p in pieces) == max(0, (before - small.overlap_frames) // 8 * 8) * HOP
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="piece_frames must be an integer >= 1"):
            small.stream([good], piece_frames=bad)  # at the call, not at the first piece


def test_stream_example_writes_the_wav(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("stream_long_mel", ROOT / "examples/stream_long_mel.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "streamed.wav"
    argv = ["--random-weights", "tiny", "--seconds", "1.5", "--piece-frames", "32", "--out", str(out)]
    assert example.main(argv) == 0
    printed = capsys.readouterr().out
    assert "look-ahead: 27 frames" in printed and "time to first audio:" in printed
    assert float(printed.split("max |streamed - offline| = ")[1].split(";")[0]) <= 1e-5
    info = sf.info(out)
    assert (info.samplerate, info.frames) == (24000, (int(1.5 * 24000) // HOP) * HOP)
    before = out.read_bytes()
    assert example.main(argv) == 2 and "exists (--overwrite replaces it)" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert example.main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b.wav")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err


def test_vocode_window_keeps_the_frames_asked_for_and_refuses_others(small):
    mel = torch.randn(small.num_mels, 30) - 5
    audio, carry = small.vocode_window(mel, 0, (0, 30))
    assert carry is None and torch.equal(audio, small(mel))
    part, _ = small.vocode_window(mel, 0, (10, 20))
    assert part.shape == (10 * HOP,)
    for keep in ((5, 5), (0, 31), (-1, 4)):
        with pytest.raises(ValueError, match="vocode_window"):
            small.vocode_window(mel, 0, keep)
