"""The discriminators' backward in two passes (real, then generated audio) gives the joint backward's
gradients and update bit for bit, with checkpointing too, and keeps less of the discriminators alive.
The v2 set (MPD + CQT) at tiny widths, so that both kinds of sub-discriminator are covered."""

import gc

import pytest
import torch

from vocoder.audio import MelSpectrogram
from vocoder.bench.saved import SavedTensorLedger
from vocoder.bench.train import load_config
from vocoder.models import Generator, MultiScaleMelSpectrogramLoss, build_discriminators
from vocoder.training import split_backward
from vocoder.training.step import GanStep

SR = 24000
pytestmark = pytest.mark.usefixtures("one_thread")


def step(split: bool, checkpointing: bool = False) -> GanStep:
    torch.manual_seed(0)
    discriminators = build_discriminators({"use_cqtd_instead_of_mrd": True, "cqtd_filters": 8, "cqtd_max_filters": 16,
                                           "discriminator_channel_mult": 0.125}, SR, checkpointing)
    return GanStep(Generator.from_config(load_config("model", "tiny")), discriminators,
                   MelSpectrogram.from_config(load_config("mel", "24khz_100band")), MultiScaleMelSpectrogramLoss(SR),
                   split_discriminator_backward=split)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_two_passes_give_the_joint_backwards_gradients_bit_for_bit(checkpointing):
    wav = (0.3 * torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    results = []
    for split in (False, True):
        s = step(split, checkpointing)
        assert s.split_discriminator_backward is split
        losses = s(wav)
        d_grads = {n: p.grad.clone() for n, p in s.discriminators.named_parameters()}
        params = {n: p.detach().clone() for n, p in [*s.generator.named_parameters(), *s.discriminators.named_parameters()]}
        results.append((losses, d_grads, params))
    (joint_losses, joint_grads, joint_params), (split_losses, split_grads, split_params) = results
    assert joint_grads.keys() == split_grads.keys() and len(joint_grads) > 10
    for name in joint_grads:
        assert torch.equal(joint_grads[name], split_grads[name]), name
    for name in joint_params:  # and so the same update of both models
        assert torch.equal(joint_params[name], split_params[name]), name
    for key in joint_losses:
        assert torch.equal(joint_losses[key], split_losses[key]), key


def test_two_passes_keep_less_of_the_discriminators_alive(monkeypatch):
    # the ledger's pack hooks put saved outputs in reference cycles that only the collector frees
    # (autograd's own saved tensors go with their graph): collect after each side
    one_side = split_backward.backward_one_side
    monkeypatch.setattr(split_backward, "backward_one_side", lambda *a: (one_side(*a), gc.collect())[0])
    wav = (0.3 * torch.randn(1, 1, 8192, generator=torch.Generator().manual_seed(2))).clamp(-1, 1)
    peaks = []
    for split in (False, True):
        s = step(split)
        fake = s.generator(s.mel(wav.squeeze(1)))[..., : wav.shape[-1]].detach()
        with SavedTensorLedger(resident=list(s.discriminators.parameters())) as ledger:
            s._discriminator_update(wav, fake, None)
        peaks.append(ledger.peak_bytes)
    assert peaks[1] < 0.7 * peaks[0]


def test_channels_last_discriminators_train_the_same_parameters():
    """GanStep(channels_last=True) reorders the discriminators' 2-D weights in memory only: the
    weights are channels-last, the optimisers hold the same parameters, and one update matches the
    contiguous step to float rounding."""
    wav = (0.3 * torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(3))).clamp(-1, 1)
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        discriminators = build_discriminators({"use_cqtd_instead_of_mrd": True, "cqtd_filters": 8,
                                               "cqtd_max_filters": 16, "discriminator_channel_mult": 0.125}, SR)
        s = GanStep(Generator.from_config(load_config("model", "tiny")), discriminators,
                    MelSpectrogram.from_config(load_config("mel", "24khz_100band")), MultiScaleMelSpectrogramLoss(SR),
                    channels_last=channels_last)
        four_d = [p for p in s.discriminators.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1]
        assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) == channels_last for p in four_d)
        optimised = {id(p) for group in s.optim_d.param_groups for p in group["params"]}
        assert optimised == {id(p) for p in s.discriminators.parameters()}
        losses = s(wav)
        results.append((losses, {n: p.detach().clone() for n, p in s.discriminators.named_parameters()}))
    (losses_a, params_a), (losses_b, params_b) = results
    for key in losses_a:
        torch.testing.assert_close(losses_a[key], losses_b[key], rtol=1e-4, atol=1e-5)
    for name in params_a:
        torch.testing.assert_close(params_a[name], params_b[name], rtol=1e-4, atol=1e-6)
