"""F0 targets for a pitch source (vocoder.data.pitch_tracks): torchcrepe finds a tone's pitch, the
track is computed once per file into the cache, read at a segment's mel-frame centres, unvoiced past
the file's end; the dataset's items and batches carry them."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.data import AudioDataset, collate
from vocoder.data import pitch_tracks
from vocoder.data.pitch_tracks import PitchTracks

RATE, HOP = 24000, 256

pytestmark = pytest.mark.usefixtures("one_thread")


def tone(path: Path, hz: float, seconds: float, silent_tail: float = 0.0) -> torch.Tensor:
    t = np.arange(int(seconds * RATE)) / RATE
    wav = 0.5 * np.sin(2 * np.pi * hz * t) + 0.2 * np.sin(2 * np.pi * 2 * hz * t)
    wav = np.concatenate([wav, np.zeros(int(silent_tail * RATE))]).astype(np.float32)
    sf.write(path, wav, RATE)
    return torch.from_numpy(wav)


def test_a_tone_is_tracked_cached_once_and_read_per_segment(tmp_path, monkeypatch):
    wav = tone(tmp_path / "a.wav", 220.0, 1.0, silent_tail=0.5)
    tracks = PitchTracks(tmp_path / "cache", RATE, HOP)
    f0, voiced = tracks.frames(tmp_path / "a.wav", wav, 0, 40)
    assert f0.shape == voiced.shape == (40,) and f0.dtype == torch.float32
    assert voiced[5:35].all() and torch.allclose(f0[5:35], torch.tensor(220.0), rtol=0.02)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    monkeypatch.setattr(pitch_tracks, "crepe_track", lambda *a: pytest.fail("recomputed a cached track"))
    tail, tail_voiced = tracks.frames(tmp_path / "a.wav", wav, int(1.2 * RATE), 10)  # in the silence
    assert not tail_voiced.any() and torch.allclose(tail, torch.tensor(220.0), rtol=0.02)  # F0 held on
    _, past_voiced = tracks.frames(tmp_path / "a.wav", wav, wav.numel(), 4)  # the padding past the end
    assert not past_voiced.any()


def test_a_changed_file_is_tracked_again_and_a_damaged_entry_recomputed(tmp_path, caplog):
    path = tmp_path / "a.wav"
    tracks = PitchTracks(tmp_path / "cache", RATE, HOP)
    low = tracks.frames(path, tone(path, 150.0, 0.6), 0, 20)[0]
    wav = tone(path, 300.0, 0.8)  # rewritten: another size, another cache key
    high = tracks.frames(path, wav, 0, 20)[0]
    assert float(low[10]) == pytest.approx(150, rel=0.03) and float(high[10]) == pytest.approx(300, rel=0.03)
    for entry in (tmp_path / "cache").glob("*.npz"):
        entry.write_bytes(b"not a checkpoint")
    again = tracks.frames(path, wav, 0, 20)[0]
    assert "pitch cache: recomputing" in caplog.text and torch.equal(again, high)  # undithered: the same


def test_a_clip_shorter_than_a_crepe_window_is_unvoiced(tmp_path):
    wav = tone(tmp_path / "short.wav", 200.0, 0.03)
    f0, voiced = PitchTracks(tmp_path / "cache", RATE, HOP).frames(tmp_path / "short.wav", wav, 0, 2)
    assert not voiced.any() and torch.all(f0 == pitch_tracks.UNVOICED_F0)


def test_dataset_items_and_batches_carry_the_targets(tmp_path):
    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    tone(files[0], 200.0, 1.0)
    tone(files[1], 120.0, 0.1)  # shorter than the segment: padded, and unvoiced in the padding
    tracks = PitchTracks(tmp_path / "cache", RATE, HOP)
    data = AudioDataset(files, RATE, segment_size=16 * HOP, hop_size=HOP, pitch=tracks)
    items = [data[0], data[1]]
    assert items[0]["f0"].shape == items[0]["voiced"].shape == (16,)
    assert not items[1]["voiced"][-4:].any()
    batch = collate(items)
    assert batch["f0"].shape == batch["voiced"].shape == (2, 16)
    whole = AudioDataset(files, RATE, None, HOP, train=False, pitch=data.pitch)
    frames = [whole[0], whole[1]]
    assert frames[0]["f0"].numel() == frames[0]["audio"].numel() // HOP
    padded = collate(frames)  # whole utterances of two lengths: F0 padded with its last value, voicing with 0
    short = frames[1]["f0"].numel()
    assert padded["f0"].shape[1] == frames[0]["f0"].numel()
    assert torch.all(padded["f0"][1, short:] == frames[1]["f0"][-1]) and not padded["voiced"][1, short:].any()
    assert "f0" not in AudioDataset(files, RATE, 16 * HOP, HOP)[0]  # no pitch source, no targets
