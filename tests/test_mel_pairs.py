"""Teacher-forced pairs (data.mel_dir): a corpus of wavs with mels beside it, matched by relative path;
segments cut at the same place in both, small length mismatches trimmed, larger ones (and other band
counts, missing mels) reported per file and skipped, at start-up and mid-run; the training step feeds
the file's mel to the generator."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from model_configs import plain_train

import vocoder.train as vt
from vocoder.data import collate
from vocoder.data.mel_pairs import build_mel_pairs
from vocoder.training.distributed import setup

pytestmark = pytest.mark.usefixtures("one_thread")
SR, HOP, BANDS = 24000, 256, 100
FRAMES = 24  # each file: 24 frames of 256 samples


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, Path]:
    """root/spk/{good,off_by_one,far,bands,no_mel}.wav and mel_dir/spk/*.npy|.pt. Audio sample n is
    n / N (a ramp) and mel frame f is f in every band, so a cut shows where it was made in both."""
    root, mels = tmp_path / "wavs", tmp_path / "mels"
    (root / "spk").mkdir(parents=True)
    (mels / "spk").mkdir(parents=True)
    samples = FRAMES * HOP
    for name, frames, bands, suffix in (("good", FRAMES, BANDS, ".npy"), ("off_by_one", FRAMES + 1, BANDS, ".pt"),
                                        ("far", FRAMES + 5, BANDS, ".npy"), ("bands", FRAMES, 80, ".npy"),
                                        ("no_mel", None, None, None)):
        sf.write(root / "spk" / f"{name}.wav", np.arange(samples, dtype=np.float32) / samples, SR, subtype="FLOAT")
        if frames is None:
            continue
        mel = np.tile(np.arange(frames, dtype=np.float32), (bands, 1))
        if suffix == ".npy":
            np.save(mels / "spk" / f"{name}.npy", mel)
        else:
            torch.save(torch.from_numpy(mel)[None], mels / "spk" / f"{name}.pt")  # [1, bands, frames] is fine too
    return root, mels


def build(corpus, segment=8 * HOP, train=True):
    root, mels = corpus
    return build_mel_pairs(sorted(root.rglob("*.wav")), root, mels, BANDS, SR, segment, HOP, train=train, seed=3)


def test_pairs_are_matched_checked_and_the_mismatched_reported(corpus, caplog):
    with caplog.at_level(logging.WARNING):
        data = build(corpus)
    assert sorted(p.stem for p in data.files) == ["good", "off_by_one"]
    text = caplog.text
    assert "far.npy: 29 frames, but its audio has 6144 samples = 24.0 frames of 256: more than 2 frames apart" in text
    assert "bands.npy: 80 mel bands, the model takes 100" in text
    assert "no_mel.wav: no mel file" in text and "skipped 3 of 5 files" in text


def test_segments_are_cut_at_the_same_place_in_mel_and_audio(corpus):
    data = build(corpus)
    samples = FRAMES * HOP
    starts = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        for i in range(len(data)):
            item = data[i]
            mel, audio = item["mel"], item["audio"]
            assert mel.shape == (BANDS, 8) and audio.shape == (8 * HOP,)
            start = int(mel[0, 0])
            assert torch.equal(mel[:, 0], torch.full((BANDS,), float(start)))
            assert audio[0].item() == pytest.approx(start * HOP / samples, abs=1e-7)
            assert start + 8 <= FRAMES  # the off-by-one mel is trimmed to the audio's 24 frames
            starts.add(start)
    assert len(starts) > 1
    whole = build(corpus, segment=None, train=False)
    item = whole[1]  # off_by_one: 25 frames trimmed to 24
    assert item["mel"].shape == (BANDS, FRAMES) and item["audio"].numel() == FRAMES * HOP
    batch = collate([whole[0], whole[1]])
    assert batch["mel"].shape == (2, BANDS, FRAMES)


def test_a_mel_that_changed_mid_run_is_skipped_with_its_reason(corpus):
    data = build(corpus)
    np.save(corpus[1] / "spk" / "good.npy", np.zeros((BANDS, 3), dtype=np.float32))
    item = data[0]
    assert Path(item["path"]).stem == "off_by_one"  # the next file that loads
    [(path, reason)] = item["skipped"]
    assert path.endswith("good.wav") and "3 frames, but its audio has 6144 samples" in reason


def test_training_feeds_the_files_mel_to_the_generator(corpus, tmp_path):
    root, mels = corpus
    cfg = plain_train(["+experiment=demo", "~model.pitch_source", "train.init_from=null", "data=folder",
                       f"data.root={root}", f"data.mel_dir={mels}",
                       "data.val_files=0", f"data.segment_size={8 * HOP}", "train.device=cpu", "train.batch_size=2",
                       "train.num_workers=0", "train.validation_files=0", "train.max_steps=1", "train.freeze_steps=0",
                       f"run_dir={tmp_path / 'run'}"])
    trainer = vt.build_trainer(cfg, setup("cpu"))
    inputs = []
    real = trainer.gan.g_train
    trainer.gan.g_train = lambda mel, **options: inputs.append(mel.clone()) or real(mel, **options)
    trainer.fit()
    [mel] = inputs
    assert mel.shape == (2, BANDS, 8)
    for row in mel:  # the ramp of a mel file, not the mel of the audio
        assert torch.equal(row[0], torch.arange(8, dtype=torch.float32) + row[0, 0])
