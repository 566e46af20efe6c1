"""load_audio / save_audio: formats, resampling and mixdown (and saying so), every error message, atomic writes."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from vocoder.audio import AudioError, load_audio, save_audio
from vocoder.audio import io as audio_io


def _tone(sr: int, seconds: float = 0.25, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,subtype", [("wav", "FLOAT"), ("flac", "PCM_16"), ("ogg", "VORBIS")])
def test_reads_formats(tmp_path, fmt, subtype):
    data = _tone(24000)
    path = tmp_path / f"a.{fmt}"
    sf.write(path, data, 24000, subtype=subtype)
    wav, info = load_audio(path, 24000)
    assert wav.dtype == torch.float32 and wav.dim() == 1
    assert info.sampling_rate == info.original_sampling_rate == 24000
    assert not info.resampled and not info.mixed_down and info.notes == []
    assert info.channels == 1 and info.num_samples == wav.numel() == data.size
    tol = {"FLOAT": 0.0, "PCM_16": 1 / 32767, "VORBIS": 0.05}[subtype]
    assert np.abs(wav.numpy() - data).max() <= tol


def test_resamples_and_says_so(tmp_path):
    data = _tone(48000)
    path = tmp_path / "high.wav"
    sf.write(path, data, 48000, subtype="FLOAT")
    wav, info = load_audio(path, 24000)
    assert info.resampled and info.original_sampling_rate == 48000 and info.sampling_rate == 24000
    assert wav.numel() == data.size // 2 == info.num_samples
    expected = AF.resample(torch.from_numpy(data), 48000, 24000)
    assert torch.allclose(wav, expected, atol=1e-6)
    assert info.notes == [f"{path}: resampled from 48000 Hz to 24000 Hz"]
    assert abs(wav[2000:4000].abs().max().item() - 0.5) < 0.01  # a 440 Hz tone keeps its amplitude


def test_mixes_stereo_down_and_says_so(tmp_path):
    left, right = _tone(24000, freq=300), _tone(24000, freq=500, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 24000, subtype="FLOAT")
    wav, info = load_audio(path, 24000)
    assert info.mixed_down and info.channels == 2
    assert torch.allclose(wav, torch.from_numpy((left + right) / 2), atol=1e-7)
    assert info.notes == [f"{path}: mixed 2 channels down to mono"]
    both, info2 = load_audio(path, 24000, mono=False)
    assert both.shape == (2, left.size) and not info2.mixed_down


def test_stereo_at_another_rate_does_both(tmp_path):
    path = tmp_path / "s44.flac"
    sf.write(path, np.stack([_tone(44100), _tone(44100)], axis=1), 44100)
    wav, info = load_audio(path, 22050)
    assert wav.shape == (-(-_tone(44100).size // 2),)  # ceil(T · new / old)
    assert len(info.notes) == 2 and info.mixed_down and info.resampled


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError, match=f"{path}: audio file not found"):
        load_audio(path, 24000)


def test_directory(tmp_path):
    with pytest.raises(AudioError, match=f"{tmp_path}: is a directory"):
        load_audio(tmp_path, 24000)


def test_corrupt_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(64))
    with pytest.raises(AudioError, match=f"{path}: cannot read audio"):
        load_audio(path, 24000)


def test_truncated_flac(tmp_path):
    good = tmp_path / "good.flac"
    sf.write(good, _tone(24000), 24000)
    bad = tmp_path / "cut.flac"
    bad.write_bytes(good.read_bytes()[:20])
    with pytest.raises(AudioError, match=f"{bad}: (cannot read audio|contains no audio)"):
        load_audio(bad, 24000)


def test_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 24000)
    with pytest.raises(AudioError, match=f"{path}: contains no audio samples"):
        load_audio(path, 24000)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_nan_inf(tmp_path, bad_value):
    data = _tone(24000)
    data[[10, 20]] = bad_value
    path = tmp_path / "nan.wav"
    sf.write(path, data, 24000, subtype="FLOAT")
    with pytest.raises(AudioError, match=f"{path}: 2 of {data.size} samples are NaN or Inf"):
        load_audio(path, 24000)


def test_bad_sampling_rate(tmp_path):
    with pytest.raises(ValueError, match="sampling_rate must be a positive integer"):
        load_audio(tmp_path / "x.wav", 0)


def test_save_pcm16_round_trip_and_clipping(tmp_path):
    wav = torch.from_numpy(_tone(24000))
    wav[:3] = torch.tensor([1.5, -2.0, 1.0])
    path = save_audio(tmp_path / "out.wav", wav, 24000)
    assert sf.info(path).subtype == "PCM_16" and sf.info(path).samplerate == 24000
    raw, _ = sf.read(path, dtype="int16")
    assert raw[:3].tolist() == [32767, -32767, 32767]  # clipped to ±1, full scale is ±32767
    assert np.array_equal(raw[3:], np.round(wav[3:].numpy() * 32767).astype(np.int16))
    back, info = load_audio(path, 24000)  # libsndfile reads int16 / 32768: a 1/32768 gain on top of rounding
    assert (back[3:] - wav[3:]).abs().max().item() <= 1.5 / 32768
    assert os.listdir(tmp_path) == ["out.wav"]  # no temporary file left


def test_save_float_and_multichannel(tmp_path):
    wav = torch.stack([torch.from_numpy(_tone(24000)), -torch.from_numpy(_tone(24000))])
    path = save_audio(tmp_path / "f.wav", wav, 24000, subtype="FLOAT")
    back, info = load_audio(path, 24000, mono=False)
    assert sf.info(path).subtype == "FLOAT" and info.channels == 2
    assert torch.equal(back, wav)


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "keep.wav"
    save_audio(path, np.zeros(100, dtype=np.float32), 24000)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=f"{path}: already exists; pass overwrite=True"):
        save_audio(path, np.ones(100, dtype=np.float32) * 0.5, 24000)
    assert path.read_bytes() == before
    save_audio(path, np.ones(100, dtype=np.float32) * 0.5, 24000, overwrite=True)
    assert path.read_bytes() != before


def test_save_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "old.wav"
    save_audio(path, np.zeros(100, dtype=np.float32), 24000)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(audio_io.sf.SoundFile, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        save_audio(path, np.ones(100, dtype=np.float32), 24000, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["old.wav"]


def test_save_bad_input_messages(tmp_path):
    good = np.zeros(10, dtype=np.float32)
    with pytest.raises(ValueError, match=r"n\.wav: refusing to write audio with NaN or Inf"):
        save_audio(tmp_path / "n.wav", np.array([0.0, np.nan], dtype=np.float32), 24000)
    with pytest.raises(ValueError, match=r"z\.wav: refusing to write zero-length audio"):
        save_audio(tmp_path / "z.wav", np.zeros(0, dtype=np.float32), 24000)
    with pytest.raises(ValueError, match=r"a\.mp3: can write"):
        save_audio(tmp_path / "a.mp3", good, 24000)
    with pytest.raises(ValueError, match=r"s\.wav: subtype must be one of"):
        save_audio(tmp_path / "s.wav", good, 24000, subtype="PCM_24")
    with pytest.raises(ValueError, match=r"d\.wav: expected audio of shape"):
        save_audio(tmp_path / "d.wav", np.zeros((1, 1, 10), dtype=np.float32), 24000)
    assert os.listdir(tmp_path) == []


def test_save_creates_parent_folders(tmp_path):
    path = save_audio(tmp_path / "a" / "b" / "c.flac", np.zeros(10, dtype=np.float32), 16000)
    assert sf.info(path).format == "FLAC"
