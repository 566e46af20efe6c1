"""Losses against NVIDIA BigVGAN's: multi-scale mel L1 (values and gradients), feature matching, LS-GAN."""

import pytest
import torch

from vocoder.models.losses import (
    MultiScaleMelSpectrogramLoss,
    discriminator_loss,
    feature_loss,
    generator_loss,
)


def _wavs(batch: int = 2, length: int = 8192, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 24000.0
    y = 0.5 * torch.sin(2 * torch.pi * 330.0 * t) + 0.05 * torch.randn(batch, 1, length, generator=g)
    y_hat = y + 0.05 * torch.randn(batch, 1, length, generator=g)
    return y.clamp(-1, 1), y_hat.clamp(-1, 1)


@pytest.mark.parametrize("sampling_rate", [24000, 44100])
def test_mel_loss_matches_bigvgan(sampling_rate):
    ref = pytest.importorskip("bigvgan.loss")
    y, y_hat = _wavs()
    theirs_in = y_hat.clone().requires_grad_()
    ours_in = y_hat.clone().requires_grad_()
    theirs = ref.MultiScaleMelSpectrogramLoss(sampling_rate=sampling_rate)(y, theirs_in)
    ours = MultiScaleMelSpectrogramLoss(sampling_rate=sampling_rate)(y, ours_in)
    assert abs(ours.item() - theirs.item()) <= 1e-5
    theirs.backward()
    ours.backward()
    assert (ours_in.grad - theirs_in.grad).abs().max().item() <= 1e-5 * theirs_in.grad.abs().max().item()


def test_mel_loss_options_match_bigvgan():
    ref = pytest.importorskip("bigvgan.loss")
    y, y_hat = _wavs(1, 4096)
    kwargs = dict(n_mels=[40, 80], window_lengths=[256, 1024], pow=2.0, log_weight=0.5, clamp_eps=1e-4,
                  mel_fmin=[50, 0], mel_fmax=[None, 8000])
    theirs = ref.MultiScaleMelSpectrogramLoss(sampling_rate=22050, **kwargs)(y, y_hat)
    ours = MultiScaleMelSpectrogramLoss(sampling_rate=22050, **kwargs)(y, y_hat)
    assert abs(ours.item() - theirs.item()) <= 1e-5


def test_mel_loss_properties():
    y, y_hat = _wavs(2, 4096)
    loss = MultiScaleMelSpectrogramLoss(24000)
    assert loss(y, y).item() == 0.0
    assert loss(y, y_hat).item() > 0
    assert torch.equal(loss(y, y_hat), loss(y[:, 0], y_hat[:, 0]))  # (B, 1, T) or (B, T)
    assert loss.state_dict() == {}  # filters and windows are derived, not saved
    mag = MultiScaleMelSpectrogramLoss(24000, window_lengths=[512], n_mels=[80], mag_weight=1.0, log_weight=0.0)
    scale = mag.scales[0]
    expected = torch.mean(torch.abs(scale(y[:, 0]) - scale(y_hat[:, 0])))  # linear mels, as documented
    assert torch.allclose(mag(y, y_hat), expected)


def test_mel_loss_bad_inputs():
    loss = MultiScaleMelSpectrogramLoss(24000)
    y, y_hat = _wavs(1, 4096)
    with pytest.raises(ValueError, match="differ in shape"):
        loss(y, y_hat[..., :-1])
    with pytest.raises(ValueError, match=r"mono audio \(B, 1, T\)"):
        loss(y.expand(1, 2, 4096), y_hat.expand(1, 2, 4096))
    with pytest.raises(ValueError, match="one entry per scale"):
        MultiScaleMelSpectrogramLoss(24000, n_mels=[80], window_lengths=[512, 1024])


def _fake_disc_outputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 37), (2, 1, 9, 20), (2, 64)]
    real = [torch.randn(s, generator=g) for s in shapes]
    gen = [torch.randn(s, generator=g) for s in shapes]
    fmap_r = [[torch.randn(2, 4, 10, generator=g) for _ in range(3)] for _ in shapes]
    fmap_g = [[torch.randn(2, 4, 10, generator=g) for _ in range(3)] for _ in shapes]
    return real, gen, fmap_r, fmap_g


def test_gan_losses_match_bigvgan():
    ref = pytest.importorskip("bigvgan.loss")
    real, gen, fmap_r, fmap_g = _fake_disc_outputs()
    ours_d, ours_r, ours_g = discriminator_loss(real, gen)
    theirs_d, theirs_r, theirs_g = ref.discriminator_loss(real, gen)
    assert abs(ours_d.item() - theirs_d.item()) <= 1e-6
    assert [float(v) for v in ours_r] == pytest.approx(theirs_r, abs=1e-7)
    assert [float(v) for v in ours_g] == pytest.approx(theirs_g, abs=1e-7)
    ours_adv, ours_terms = generator_loss(gen)
    theirs_adv, theirs_terms = ref.generator_loss(gen)
    assert abs(ours_adv.item() - theirs_adv.item()) <= 1e-6
    assert all(torch.equal(a, b) for a, b in zip(ours_terms, theirs_terms))
    assert abs(feature_loss(fmap_r, fmap_g).item() - ref.feature_loss(fmap_r, fmap_g).item()) <= 1e-6


def test_gan_losses_values_and_gradients():
    real = [torch.ones(2, 5), torch.zeros(2, 3)]
    gen = [torch.zeros(2, 5, requires_grad=True), torch.ones(2, 3, requires_grad=True)]
    loss_d, r_terms, g_terms = discriminator_loss(real, gen)
    assert loss_d.item() == 2.0 and [t.item() for t in r_terms] == [0.0, 1.0]
    assert [t.item() for t in g_terms] == [0.0, 1.0] and not any(t.requires_grad for t in r_terms + g_terms)
    loss_g, _ = generator_loss(gen)
    assert loss_g.item() == 1.0
    loss_g.backward()
    assert torch.equal(gen[0].grad, torch.full((2, 5), -2.0 / 10))  # d/dx mean((1 − x)²) at 0
    fm = feature_loss([[torch.zeros(3)]], [[torch.ones(3)]])
    assert fm.item() == 2.0  # BigVGAN's λ = 2 is inside


def test_feature_matching_keeps_only_signs_for_backward():
    """mean |a − b| through mean_abs_difference: the values and both gradients of the plain
    expression bit for bit, with an int8 sign kept for backward instead of the fp32 difference."""
    from vocoder.bench.saved import SavedTensorLedger
    from vocoder.models.losses import mean_abs_difference

    gen = torch.Generator().manual_seed(5)
    a, b = (torch.randn(3, 7, 501, generator=gen).requires_grad_() for _ in range(2))
    b.data[0, 0, :5] = a.data[0, 0, :5]  # equal elements: gradient 0, as torch.abs gives
    with SavedTensorLedger() as lean:
        ours = mean_abs_difference(a, b) * 3
        grads = torch.autograd.grad(ours, (a, b))
    with SavedTensorLedger() as plain:
        theirs = torch.mean(torch.abs(a - b)) * 3
        want = torch.autograd.grad(theirs, (a, b))
    assert torch.equal(ours, theirs) and all(torch.equal(g, w) for g, w in zip(grads, want))
    assert grads[0][0, 0, :5].eq(0).all()
    assert lean.peak_bytes * 4 == plain.peak_bytes == a.numel() * 4
