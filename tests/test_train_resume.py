"""Exact resume: a run stopped mid-epoch and resumed ends bit-identical (CPU) to one that never
stopped: every tensor of the generator, the discriminators and the optimisers, with and without
DataLoader workers. A lighter tiny model on a small noise corpus keeps it to seconds."""

import random

import numpy as np
import pytest
import torch

import vocoder.train as vt
from test_train import plain
from vocoder.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

# 16 channels, one resblock kernel, two MPD periods, one MRD resolution: ~0.25 s per step on a CPU core
LIGHT = ["train.init_from=null", "model.upsample_initial_channel=16", "model.resblock_kernel_sizes=[3]",
         "model.resblock_dilation_sizes=[[1]]", "discriminator.mpd_reshapes=[2,3]",
         "discriminator.resolutions=[[512,50,240]]"]


@pytest.fixture(scope="module")
def corpus(noise_corpus):
    """8 noise clips of 0.3 s: one held out for validation, 7 train = 3 batches of 2 per epoch."""
    return noise_corpus(8)


def light_run(env, run_dir, corpus, max_steps: int, workers: int, *overrides: str):
    cfg = plain(["+experiment=demo", "data=folder", f"data.root={corpus}", "data.val_files=1",
                 "data.segment_size=2048", "train.batch_size=2", f"train.num_workers={workers}",
                 "train.device=cpu", "train.checkpoint_interval=2", "train.log_interval=100",
                 f"train.max_steps={max_steps}",
                 f"run_dir={run_dir}", *LIGHT, *overrides])
    trainer = vt.build_trainer(cfg, env)
    trainer.fit()
    trainer.log.close()
    return trainer


def assert_same_tensors(a, b, where: str = "") -> int:
    """Every tensor in two nested states is torch.equal (and everything else ==); how many tensors."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
        return 1
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        return sum(assert_same_tensors(a[k], b[k], f"{where}/{k}") for k in a)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        return sum(assert_same_tensors(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    assert a == b, where
    return 0


@pytest.mark.parametrize("workers, validation", [(0, ["train.validation_files=1", "train.validation_interval=5"]),
                                                 (2, ["train.validation_files=0"])])
def test_resume_mid_epoch_is_bit_identical(env, corpus, tmp_path, workers, validation):
    """8 steps straight vs 4, stopped in the middle of the second epoch, then resumed to 8."""
    straight = light_run(env, tmp_path / "straight", corpus, 8, workers, *validation)
    stopped = light_run(env, tmp_path / "stopped", corpus, 4, workers, *validation)
    assert stopped.train_batches.state_dict() == {"epoch": 1, "batch": 1, "batches_per_epoch": 3}  # mid-epoch
    # scramble the process's streams: the resumed run must take them from the checkpoint
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    resumed = light_run(env, tmp_path / "stopped", corpus, 8, workers, *validation)
    assert straight.step == resumed.step == 8
    count = assert_same_tensors(straight.generator.state_dict(), resumed.generator.state_dict(), "generator")
    count += assert_same_tensors(straight.discriminators.state_dict(), resumed.discriminators.state_dict(), "disc")
    assert count > 50
    assert_same_tensors(straight.gan.state_dict(), resumed.gan.state_dict(), "optimisers")
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "step_00000008.pt")
    b = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "step_00000008.pt")
    a["run_config"]["run_dir"] = b["run_config"]["run_dir"]
    assert_same_tensors(a, b, "checkpoint")  # data position, RNG streams and bad files included


# ---------------------------------------------------------------- the pieces: batches, worker RNGs, RNG state


def test_epoch_batches_start_anywhere_and_share_out_across_ranks():
    from vocoder.data.sampler import EpochBatchSampler
    ranks = [EpochBatchSampler(23, 3, seed=5, rank=r, world_size=2) for r in range(2)]
    assert ranks[0].batches_per_epoch == 3  # 23 // (2 * 3)
    epoch0 = [list(s) for s in ranks]
    flat = [i for batches in epoch0 for b in batches for i in b]
    assert len(flat) == len(set(flat)) == 18 and set(flat) <= set(range(23))  # disjoint, 5 dropped
    again = EpochBatchSampler(23, 3, seed=5, rank=0, world_size=2)
    assert list(again) == epoch0[0]  # fixed by (seed, epoch)
    again.set_position(0, 2)
    assert list(again) == epoch0[0][2:] and len(again) == 1
    again.set_position(1)
    assert list(again) != epoch0[0] and len(again) == 3
    other = EpochBatchSampler(23, 3, seed=6, rank=0, world_size=2)
    assert list(other) != epoch0[0]
    with pytest.raises(ValueError, match="outside an epoch of 3 batches"):
        again.set_position(0, 4)


class DrawingDataset(torch.utils.data.Dataset):
    """Items that are draws from the loading process's torch, numpy and `random` streams."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        item = self.inner[index]  # seeds the worker's streams from (seed, epoch, index)
        drawn = torch.tensor([torch.rand(()).item(), np.random.rand(), random.random()])
        return {**item, "audio": torch.cat([item["audio"], drawn])}


def test_worker_random_state_follows_the_item_not_the_worker(corpus):
    from vocoder.data import build_dataset, collate
    from vocoder.data.sampler import EpochBatchSampler
    from vocoder.training.batches import BatchStream
    dataset = DrawingDataset(build_dataset(sorted(corpus.glob("*.wav")), 24000, 2048, 256, seed=3))
    dataset.set_epoch = dataset.inner.set_epoch

    def batches(start, count, workers):
        sampler = EpochBatchSampler(len(dataset), 2, seed=3)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                                             collate_fn=collate, generator=torch.Generator())
        stream = BatchStream(loader, seed=3)
        stream.load_state_dict({"epoch": start // 4, "batch": start % 4, "batches_per_epoch": 4}, start)
        got = []
        for batch in stream:
            got.append(batch["audio"])
            if len(got) == count:
                return got

    whole = batches(0, 6, workers=2)  # two workers: batch k loaded by worker k % 2
    assert all(torch.isfinite(b).all() for b in whole)
    resumed = batches(3, 3, workers=2)  # batch 3 now loaded by worker 0, 5 crosses into epoch 1
    for a, b in zip(whole[3:], resumed):
        assert torch.equal(a, b)
    assert not torch.equal(whole[0][..., -3:], whole[1][..., -3:])  # the draws differ between items


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path, device):
    """A resume on CUDA loads the checkpoint onto the GPU (map_location), RNG states included: the
    generators must still be restored from those (this raised "RNG state must be a torch.ByteTensor")."""
    from vocoder.checkpoint import save_checkpoint
    from vocoder.training.rng import rng_state, set_rng_state
    dev = torch.device(device)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    save_checkpoint(tmp_path / "rng.pt", rng=rng_state(dev))
    expected = (torch.rand(4), np.random.randn(4), [random.random() for _ in range(4)], torch.rand(4, device=dev))
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    state = load_checkpoint(tmp_path / "rng.pt", map_location=dev)["rng"]
    assert state["torch"].device.type == dev.type
    set_rng_state(state, dev)
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.randn(4), expected[1])
    assert [random.random() for _ in range(4)] == expected[2]
    if device == "cuda":  # the CPU stream drew first above, so this checks the CUDA stream on its own
        torch.manual_seed(7)
        set_rng_state(state, dev)
        assert torch.equal(torch.rand(4, device=dev), expected[3])
