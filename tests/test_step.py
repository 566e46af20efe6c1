"""GanStep's discriminator freeze (BigVGAN's --freeze_step): while frozen the discriminators and their
optimiser do not change and the generator's gradient is the mel loss's alone; an adversarial step
adds the GAN losses (the loop's switch between the two: tests/test_train.py). Tiny generator and
discriminators of the demo, 2 × 2048 samples, on the CPU."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

from vocoder.audio import MelSpectrogram
from vocoder.models import Generator, build_discriminators
from vocoder.models.losses import MultiScaleMelSpectrogramLoss
from vocoder.training.loop import TrainOptions
from vocoder.training.step import GanStep

CONFIGS = Path(__file__).resolve().parents[1] / "vocoder" / "configs"
SR = 24000

pytestmark = pytest.mark.usefixtures("one_thread")


def load(group: str, name: str) -> dict:
    """A config file's own keys (its Hydra `defaults` list left out)."""
    config = yaml.safe_load((CONFIGS / group / f"{name}.yaml").read_text())
    config.pop("defaults", None)
    return config


def make_step() -> GanStep:
    torch.manual_seed(0)
    model = load("model", "tiny")
    gen = Generator.from_config(model)
    discs = build_discriminators(load("discriminator", "tiny"), SR)
    # clipping far above the gradient norms, so the gradients left on the parameters are the raw ones
    return GanStep(gen, discs, MelSpectrogram.from_config(load("mel", "24khz_100band")), MultiScaleMelSpectrogramLoss(SR),
                   learning_rate=1e-3, lr_decay=0.9, clip_grad_norm=1e9)


@pytest.fixture(scope="module")
def wav() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(2048) / SR
    tone = torch.sin(2 * torch.pi * 220 * t) * 0.3
    return (tone + 0.05 * torch.randn(2, 2048, generator=g)).unsqueeze(1)


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def mel_only_grads(gan: GanStep, wav: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradient of λ_mel · mel loss for a copy of the generator, computed here independently."""
    gen = copy.deepcopy(gan.generator)
    fake = gen(gan.mel(wav.squeeze(1)))[..., : wav.shape[-1]]
    (MultiScaleMelSpectrogramLoss(SR)(wav, fake) * gan.lambda_mel).backward()
    return {k: v.grad for k, v in gen.named_parameters()}


def test_frozen_step_leaves_the_discriminators_and_uses_the_mel_loss_alone(wav):
    gan = make_step()
    d_before, g_before = params(gan.discriminators), params(gan.generator)
    expected = mel_only_grads(gan, wav)

    out = gan(wav, adversarial=False)

    assert set(out) == {"loss_g", "mel", "grad_norm_g"}
    assert torch.equal(out["loss_g"], out["mel"])
    for name, value in gan.discriminators.named_parameters():
        assert torch.equal(value, d_before[name]), name
        assert value.grad is None, name
    assert gan.optim_d.state_dict()["state"] == {}  # AdamW never stepped: no moments, no step count
    grads = {k: v.grad for k, v in gan.generator.named_parameters()}
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-5, atol=1e-8, msg=name)
    assert any(not torch.equal(v, g_before[k]) for k, v in gan.generator.named_parameters())
    # as in NVIDIA's train.py, both schedules step every step, frozen or not
    assert gan.sched_g.last_epoch == gan.sched_d.last_epoch == 1
    assert gan.optim_d.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.9)


def test_adversarial_step_updates_the_discriminators_and_adds_the_gan_losses(wav):
    gan = make_step()
    d_before = params(gan.discriminators)
    mel_only = mel_only_grads(gan, wav)

    out = gan(wav)

    assert {"loss_d", "d_mpd", "d_mrd", "adv_mpd", "fm_mpd", "adv_mrd", "fm_mrd", "grad_norm_d"} <= set(out)
    parts = out["mel"] + out["adv_mpd"] + out["fm_mpd"] + out["adv_mrd"] + out["fm_mrd"]
    torch.testing.assert_close(out["loss_g"], parts)
    assert all(not torch.equal(v, d_before[k]) for k, v in gan.discriminators.named_parameters())
    assert gan.optim_d.state_dict()["state"]
    # the generator's gradient now includes the adversarial and feature-matching terms
    differs = [k for k, v in gan.generator.named_parameters()
               if not torch.allclose(v.grad, mel_only[k], rtol=1e-3, atol=1e-6)]
    assert differs


def test_freeze_steps_must_not_be_negative():
    with pytest.raises(ValueError, match="train.freeze_steps must be 0 or more, got -1"):
        TrainOptions(freeze_steps=-1)
