"""The log-mel spectrogram against NVIDIA BigVGAN's and an independent float64 computation; shapes, frames, errors."""

import librosa
import pytest
import torch

from vocoder.audio import MelSpectrogram, mel_filterbank, mel_spectrogram, num_frames

# (n_fft, num_mels, sampling_rate, hop, win, fmin, fmax) of BigVGAN v2's released configs
SETTINGS = {
    "24khz_100band_256x": (1024, 100, 24000, 256, 1024, 0, 12000),
    "44khz_128band_512x": (2048, 128, 44100, 512, 2048, 0, None),
    "22khz_80band_256x": (1024, 80, 22050, 256, 1024, 0, 8000),
}


def _audio(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 24000.0
    tone = 0.5 * torch.sin(2 * torch.pi * 220.0 * t)
    return (tone + 0.1 * torch.randn(batch, length, generator=g)).clamp(-1, 1)


def _oracle(wav: torch.Tensor, n_fft, num_mels, sr, hop, win, fmin, fmax) -> torch.Tensor:
    """The formula written out in float64: reflect pad, Hann STFT, sqrt(|X|² + 1e-9), Slaney mel, ln."""
    basis = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax,
                                                 dtype=float)).double()
    pad = (n_fft - hop) // 2
    x = torch.nn.functional.pad(wav.double()[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win, dtype=torch.float64),
                      center=False, return_complex=True)
    mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    return torch.log(torch.clamp(basis @ mag, min=1e-5))


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_matches_bigvgan(name):
    meldataset = pytest.importorskip("bigvgan.meldataset")
    params = SETTINGS[name]
    wav = _audio(2, 8192)
    theirs = meldataset.mel_spectrogram(wav, *params)
    ours = mel_spectrogram(wav, *params)
    module = MelSpectrogram(*params)(wav)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert torch.equal(module, ours)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_matches_float64_formula(name):
    params = SETTINGS[name]
    wav = _audio(2, 8192, seed=1)
    ours = MelSpectrogram(*params)(wav)
    assert (ours.double() - _oracle(wav, *params)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("length", [512, 1024, 8192, 8192 + 256 * 3])
def test_frames_are_length_over_hop(length):
    mel = MelSpectrogram(*SETTINGS["24khz_100band_256x"])
    assert mel(_audio(1, length)).shape == (1, 100, length // 256)
    assert mel.num_frames(length) == length // 256


@pytest.mark.parametrize("length", [1000, 8191, 8193, 8300])
def test_frames_rule_for_other_lengths(length):
    # n_fft − hop even: floor(T / hop); the trailing partial hop gets no frame.
    mel = MelSpectrogram(*SETTINGS["24khz_100band_256x"])
    assert mel(_audio(1, length)).shape[-1] == length // 256 == mel.num_frames(length)


def test_frames_rule_odd_n_fft_minus_hop():
    # n_fft − hop odd (1024 − 255): one sample less of padding, so T = k·hop gives k − 1 frames.
    mel = MelSpectrogram(1024, 80, 22050, 255, 1024, 0, None)
    for length in (255 * 8, 255 * 8 + 1, 3000):
        frames = mel(_audio(1, length)).shape[-1]
        assert frames == mel.num_frames(length) == (length + 2 * 384 - 1024) // 255 + 1
    assert mel.num_frames(255 * 8) == 7


def test_input_shapes():
    mel = MelSpectrogram(*SETTINGS["24khz_100band_256x"])
    wav = _audio(3, 2048)
    batched = mel(wav)
    assert batched.shape == (3, 100, 8)
    assert torch.equal(mel(wav[:, None]), batched)
    # one item vs the batch: same numbers up to the order of the FFT's sums (threads differ by batch size)
    assert torch.allclose(mel(wav[1]), batched[1], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(T,\), \(B, T\) or \(B, 1, T\)"):
        mel(wav[:, None].expand(3, 2, 2048))


def test_fmax_none_is_nyquist_and_buffers_not_saved():
    a = MelSpectrogram(1024, 80, 24000, 256, 1024, 0, None)
    b = MelSpectrogram(1024, 80, 24000, 256, 1024, 0, 12000)
    assert torch.equal(a.mel_basis, b.mel_basis)
    assert torch.equal(mel_filterbank(24000, 1024, 80), a.mel_basis)
    assert a.state_dict() == {}
    assert {n for n, _ in a.named_buffers()} == {"mel_basis", "window"}


def test_float64_input_and_gradient():
    mel = MelSpectrogram(*SETTINGS["24khz_100band_256x"])
    wav = _audio(1, 2048).double().requires_grad_()
    out = mel(wav)
    assert out.dtype == torch.float64
    out.sum().backward()
    assert torch.isfinite(wav.grad).all() and wav.grad.abs().sum() > 0


def test_from_config():
    cfg = {"n_fft": 1024, "num_mels": 100, "sampling_rate": 24000, "hop_size": 256, "win_size": 1024,
           "fmin": 0, "fmax": 12000}
    wav = _audio(1, 2048)
    assert torch.equal(MelSpectrogram.from_config(cfg)(wav), MelSpectrogram(*SETTINGS["24khz_100band_256x"])(wav))


def test_bad_parameters_and_short_input():
    with pytest.raises(ValueError, match="win_size"):
        MelSpectrogram(512, 80, 24000, 256, 1024)
    with pytest.raises(ValueError, match="fmin"):
        MelSpectrogram(1024, 80, 24000, 256, 1024, fmin=13000)
    mel = MelSpectrogram(*SETTINGS["24khz_100band_256x"])
    # reflect padding of (n_fft − hop) // 2 = 384 needs at least 385 samples
    with pytest.raises(ValueError, match="256 samples is too short.*at least 385"):
        mel(torch.zeros(1, 256))
    assert mel(torch.zeros(1, 385)).shape == (1, 100, 1)


def test_num_frames_matches_centered_stft():
    assert num_frames(8192, 1024, 256, center=True) == 8192 // 256 + 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    params = SETTINGS["24khz_100band_256x"]
    wav = _audio(2, 8192)
    mel = MelSpectrogram(*params)
    cpu = mel(wav)
    assert (mel.cuda()(wav.cuda()).cpu() - cpu).abs().max().item() <= 1e-4
    assert (mel_spectrogram(wav.cuda(), *params).cpu() - cpu).abs().max().item() <= 1e-4
    assert (MelSpectrogram(*params)(wav.cuda()).cpu() - cpu).abs().max().item() <= 1e-4  # module on CPU
