"""vocoder.data: filelists, folder search, broken-file policy, LibriTTS filelists, segments, collate."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.data import (AudioDataset, build_dataset, check_audio_files, collate, find_audio,
                          libritts_files, read_filelist)
from vocoder.data.libritts import main as prepare_main

SR, HOP = 24000, 256


def write_wav(path: Path, samples: int, rate: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A wav of uniform noise in [-0.5, 0.5); the float32 samples written (frames, channels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = (np.random.default_rng(seed).random((samples, channels), dtype=np.float32) - 0.5)
    sf.write(path, audio, rate, subtype="FLOAT" if path.suffix.lower() == ".wav" else None)
    return audio


# ---------------------------------------------------------------- LibriTTS

@pytest.fixture
def libritts(tmp_path) -> Path:
    """A fake LibriTTS root: train-clean-100 (speaker 19, 3 utterances), dev-clean (speaker 84, 2)."""
    root = tmp_path / "LibriTTS"
    for subset, spk, chap, n in (("train-clean-100", "19", "198", 3), ("dev-clean", "84", "121123", 2)):
        for utt in reversed(range(n)):
            wav = root / subset / spk / chap / f"{spk}_{chap}_{utt:06d}_000000.wav"
            write_wav(wav, 2048, seed=utt)
            wav.with_name(f"{wav.stem}.normalized.txt").write_text(f"Utterance {utt} of {spk}.\n")
            wav.with_name(f"{wav.stem}.original.txt").write_text(f"utterance {utt}\n")
    return root


def test_libritts_filelists(libritts, tmp_path, capsys):
    written = prepare_main([str(libritts), "--train", "train-clean-100", "--val", "dev-clean"])
    assert written == {"train": libritts / "train.txt", "val": libritts / "val.txt"}
    out = capsys.readouterr().out
    assert "3 utterances from train-clean-100" in out and "2 utterances from dev-clean" in out
    lines = (libritts / "train.txt").read_text().splitlines()
    assert lines == [f"train-clean-100/19/198/19_198_{u:06d}_000000.wav|Utterance {u} of 19." for u in range(3)]
    assert read_filelist(libritts / "val.txt") == [
        libritts / f"dev-clean/84/121123/84_121123_{u:06d}_000000.wav" for u in range(2)]
    assert all(p.is_file() for p in read_filelist(libritts / "train.txt"))
    assert len(libritts_files(libritts, "train-clean-100,dev-clean")) == 5
    # another output folder: paths stay relative to the root
    prepare_main([str(libritts), "--train", "dev-clean", "--val", "", "--out", str(tmp_path / "lists")])
    assert read_filelist(tmp_path / "lists" / "train.txt", root=libritts)[0].is_file()


def test_libritts_errors(libritts, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="'train-clean-360'.*dev-clean, train-clean-100"):
        libritts_files(libritts, ["train-clean-100", "train-clean-360"])
    with pytest.raises(FileNotFoundError, match="did you mean"):
        libritts_files(tmp_path, "dev-clean")  # the parent of LibriTTS/
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"LibriTTS root {missing} does not exist"):
        libritts_files(missing, "dev-clean")
    with pytest.raises(SystemExit):  # the command line: the message, no traceback
        prepare_main([str(missing)])
    assert f"LibriTTS root {missing} does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------- filelists and folders

def test_read_filelist(tmp_path):
    for name in ("a.wav", "sub/b.flac", "sub/c.wav", "d.wav"):
        write_wav(tmp_path / "data" / name, 512)
    lists = tmp_path / "data" / "lists"
    lists.mkdir()
    absolute = tmp_path / "data" / "d.wav"
    (lists / "files.txt").write_text(
        "# a comment\n\n../a.wav|some text | with a bar\n  ../sub/b.flac  \n../sub/c|LibriTTS-style, no suffix\n"
        f"{absolute}\n")
    assert read_filelist(lists / "files.txt") == [
        lists / "../a.wav", lists / "../sub/b.flac", lists / "../sub/c.wav", absolute]
    (lists / "rooted.txt").write_text("a.wav\nsub/c\n")
    assert read_filelist(lists / "rooted.txt", root=tmp_path / "data") == [
        tmp_path / "data/a.wav", tmp_path / "data/sub/c.wav"]


def test_filelist_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n   \n")
    with pytest.raises(ValueError, match=f"{empty}.*empty"):
        read_filelist(empty)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing.txt")):
        read_filelist(tmp_path / "missing.txt")
    (tmp_path / "one.txt").write_text("a.wav\n")
    with pytest.raises(FileNotFoundError, match=f"dataset root {tmp_path / 'no_root'}"):
        read_filelist(tmp_path / "one.txt", root=tmp_path / "no_root")


def test_find_audio(tmp_path):
    for name in ("b/z.wav", "a.flac", "b/UPPER.WAV"):
        write_wav(tmp_path / name, 256)
    (tmp_path / "b/c").mkdir()
    sf.write(tmp_path / "b/c/y.ogg", np.zeros(256, np.float32), SR)
    (tmp_path / "b" / "notes.txt").write_text("not audio")
    assert find_audio(tmp_path) == [tmp_path / n for n in ("a.flac", "b/UPPER.WAV", "b/c/y.ogg", "b/z.wav")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"no audio.*{tmp_path / 'empty'}"):
        find_audio(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"dataset root {tmp_path / 'missing'} does not exist"):
        find_audio(tmp_path / "missing")


# ---------------------------------------------------------------- broken files

@pytest.fixture
def mixed_files(tmp_path) -> dict[str, Path]:
    files = {"good": tmp_path / "good.wav", "empty": tmp_path / "empty.wav", "text": tmp_path / "text.wav",
             "short": tmp_path / "short.wav", "missing": tmp_path / "missing.wav"}
    write_wav(files["good"], 4096)
    sf.write(files["empty"], np.zeros(0, np.float32), SR)
    files["text"].write_text("this is not a wav file\n")
    write_wav(files["short"], 100)
    return files


def test_check_audio_files(mixed_files):
    good, broken = check_audio_files(mixed_files.values(), min_samples=HOP)
    assert good == [mixed_files["good"]]
    reasons = {path.stem: reason for path, reason in broken}
    assert set(reasons) == {"empty", "text", "short", "missing"}
    assert "0 audio frames" in reasons["empty"]
    assert reasons["text"].startswith("unreadable")
    assert "too short: 100 samples" in reasons["short"] and "one hop (256" in reasons["short"]
    assert reasons["missing"] == "file not found"
    # counted at the rate the file will be resampled to: 100 samples at 24 kHz are 200 at 48 kHz
    _, broken = check_audio_files([mixed_files["short"]], min_samples=150, sampling_rate=48000)
    assert not broken


def test_build_dataset_skips_broken(mixed_files, caplog):
    with caplog.at_level(logging.WARNING, logger="vocoder.data"):
        ds = build_dataset(mixed_files.values(), SR, segment_size=1024, hop_size=HOP, name="training set")
    assert ds.files == [mixed_files["good"]]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5
    for name in ("empty", "text", "short", "missing"):
        assert any(str(mixed_files[name]) in line for line in lines)
    assert "skipped 4 broken of 5 files; 1 left" in lines[-1]
    with pytest.raises(ValueError, match="no usable audio files: all 4 are broken"):
        build_dataset([p for k, p in mixed_files.items() if k != "good"], SR, hop_size=HOP)


# ---------------------------------------------------------------- the dataset

def test_train_segments(tmp_path):
    long = tmp_path / "long.wav"
    audio = write_wav(long, 20000)[:, 0]
    short = tmp_path / "short.wav"
    short_audio = write_wav(short, 700, seed=1)[:, 0]
    ds = AudioDataset([long, short], SR, segment_size=1024, hop_size=HOP, seed=7)
    item = ds[0]
    assert item["path"] == str(long) and item["audio"].dtype == torch.float32
    seg = item["audio"].numpy()
    assert seg.shape == (1024,)
    start = int(np.flatnonzero(audio == seg[0])[0])  # noise: the first value finds the offset
    np.testing.assert_array_equal(seg, audio[start:start + 1024])
    padded = ds[1]["audio"].numpy()  # shorter than a segment: zero-padded at the end
    assert padded.shape == (1024,)
    np.testing.assert_array_equal(padded[:700], short_audio)
    assert not padded[700:].any()

    again = AudioDataset([long, short], SR, segment_size=1024, hop_size=HOP, seed=7)
    assert torch.equal(again[0]["audio"], item["audio"])  # same (seed, epoch, index)
    epochs = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        epochs.append(ds[0]["audio"])
    assert torch.equal(epochs[0], item["audio"])
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    ds.set_epoch(1)
    assert torch.equal(ds[0]["audio"], epochs[1])
    other_seed = AudioDataset([long], SR, segment_size=1024, hop_size=HOP, seed=8)
    assert not torch.equal(other_seed[0]["audio"], item["audio"])

    batch = collate([ds[0], ds[1]])
    assert batch["audio"].shape == (2, 1, 1024) and batch["lengths"].tolist() == [1024, 1024]
    assert batch["path"] == [str(long), str(short)]
    with pytest.raises(ValueError, match="multiple of hop_size"):
        AudioDataset([long], SR, segment_size=1000, hop_size=HOP)


def test_validation_items(tmp_path):
    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    audio = [write_wav(files[0], 1000)[:, 0], write_wav(files[1], 600, seed=1)[:, 0]]
    ds = AudioDataset(files, SR, segment_size=None, hop_size=HOP, train=False)
    items = [ds[0], ds[1]]
    assert [it["audio"].numel() for it in items] == [768, 512]  # trimmed to multiples of the hop
    np.testing.assert_array_equal(items[0]["audio"].numpy(), audio[0][:768])
    batch = collate(items)
    assert batch["audio"].shape == (2, 1, 768) and batch["lengths"].tolist() == [768, 512]
    np.testing.assert_array_equal(batch["audio"][1, 0, :512].numpy(), audio[1][:512])
    assert not batch["audio"][1, 0, 512:].any()


def test_stereo_16k_is_resampled_and_mixed(tmp_path, caplog):
    path = tmp_path / "stereo16k.wav"
    t = np.arange(16000) / 16000
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    sf.write(path, np.stack([0.5 * sine, 0.1 * sine], axis=1), 16000, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="vocoder.data"):
        ds = build_dataset([path], SR, segment_size=None, hop_size=HOP, train=False)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "1 of 1 files will be resampled to 24000 Hz" in said and "1 at 16000 Hz" in said
    assert "mixed down to mono" in said
    out = ds[0]["audio"]
    assert out.ndim == 1 and out.dtype == torch.float32
    assert abs(out.numel() - 24000) < HOP and out.numel() % HOP == 0  # 1 s at 24 kHz, trimmed
    peak = out[2000:-2000].abs().max().item()  # the mean of the channels: amplitude 0.3
    assert abs(peak - 0.3) < 0.01


def test_nan_file_names_the_file(tmp_path):
    path = tmp_path / "has_nan.wav"
    audio = np.zeros(2048, np.float32)
    audio[100] = np.nan
    sf.write(path, audio, SR, subtype="FLOAT")
    ds = AudioDataset([path], SR, segment_size=1024, hop_size=HOP)
    with pytest.raises(Exception) as err:
        ds[0]
    assert "has_nan.wav" in str(err.value) and "NaN" in str(err.value)
