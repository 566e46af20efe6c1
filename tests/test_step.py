"""GanStep on the tiny generator and discriminators of the demo, 2 × 2048 samples, on the CPU: the
discriminator freeze (BigVGAN's --freeze_step: while frozen the discriminators and their optimiser do
not change and the generator's gradient is the mel loss's alone; an adversarial step adds the GAN
losses; the loop's switch between the two: tests/test_train.py); BigVGAN's losses and gradients
despite the step's economies; discriminator checkpointing with identical gradients and less saved;
the torch.compile option."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

from numerics import rel_err
from torch import nn

from vocoder.audio import MelSpectrogram
from vocoder.bench.saved import SavedTensorLedger
from vocoder.models import Generator, build_discriminators
from vocoder.models import discriminators as discriminators_module
from vocoder.models.losses import MultiScaleMelSpectrogramLoss, discriminator_loss, feature_loss, generator_loss
from vocoder.training import step as step_module
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


# ---------------------------------------------------------------- the step's economies and options


def models(seed: int = 0, discriminator_checkpointing: bool = False
           ) -> tuple[Generator, dict[str, nn.Module], MelSpectrogram, nn.Module]:
    torch.manual_seed(seed)
    discriminators = build_discriminators(load("discriminator", "tiny"), SR, discriminator_checkpointing)
    return (Generator.from_config(load("model", "tiny")), discriminators,
            MelSpectrogram.from_config(load("mel", "24khz_100band")), MultiScaleMelSpectrogramLoss(SR))


def audio(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.3 * torch.randn(2, 1, 2048, generator=g)).clamp(-1, 1)


def grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters()}


def bigvgan_step(generator, discriminators, mel, mel_loss, wav, lambda_mel=15.0):
    """BigVGAN's update written out plainly (no optimiser step): the losses, the discriminators'
    gradients of their loss and the generator's gradients of its loss."""
    spec = mel(wav.squeeze(1))
    fake = generator(spec)[..., : wav.shape[-1]]
    loss_d = sum(discriminator_loss(*d(wav, fake.detach())[:2])[0] for d in discriminators.values())
    loss_d.backward()
    d_grads = {k: grads(d) for k, d in discriminators.items()}
    loss_g = mel_loss(wav, fake) * lambda_mel
    for d in discriminators.values():
        _, fake_out, fmap_r, fmap_g = d(wav, fake)
        loss_g = loss_g + generator_loss(fake_out)[0] + feature_loss(fmap_r, fmap_g)
    generator.zero_grad()
    loss_g.backward()
    return loss_d, loss_g, d_grads, grads(generator)


def test_step_gives_bigvgans_losses_and_gradients():
    """Weight norm once per phase, frozen discriminators and graph-free real features in the
    generator update change no loss and no gradient (beyond rounding). lr = 0 keeps the
    discriminators BigVGAN's generator update sees equal to ours."""
    ours, theirs = models(), models()
    wav = audio()
    step = GanStep(*ours, learning_rate=0.0, clip_grad_norm=1e12)  # grads read after the step: unclipped
    result = step(wav)
    loss_d, loss_g, d_grads, g_grads = bigvgan_step(*theirs, wav)
    torch.testing.assert_close(result["loss_d"], loss_d.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(result["loss_g"], loss_g.detach(), rtol=1e-6, atol=0)
    for name, d in step.discriminators.items():
        for key, value in grads(d).items():
            assert rel_err(value, d_grads[name][key]) < 1e-5, (name, key)
    for key, value in grads(step.generator).items():
        assert rel_err(value, g_grads[key]) < 1e-5, key


def test_discriminator_checkpointing_gives_identical_gradients_with_less_saved(monkeypatch):
    calls = {"step": [], "discriminators": []}
    for name, module in (("step", step_module), ("discriminators", discriminators_module)):
        real = module.checkpoint
        monkeypatch.setattr(module, "checkpoint", lambda *a, _n=name, _r=real, **k: calls[_n].append(1) or _r(*a, **k))
    wav = audio()
    results = []
    for checkpointing in (False, True):
        step = GanStep(*models(discriminator_checkpointing=checkpointing))
        params = [*step.generator.parameters(), *step.discriminators.parameters()]
        with SavedTensorLedger(resident=params) as ledger:
            losses = step(wav)
        results.append((losses, grads(step.generator), grads(step.discriminators),
                        [p.detach().clone() for p in params], ledger.peak_bytes))
    subs = sum(len(d.discriminators) for d in step.discriminators.values())
    # recomputed regions: each sub-discriminator on real and generated audio in the discriminator
    # update, and each one's losses in the generator update
    assert (len(calls["discriminators"]), len(calls["step"])) == (2 * subs, subs)
    (plain_losses, plain_g, plain_d, plain_p, plain_saved), (ck_losses, ck_g, ck_d, ck_p, ck_saved) = results
    for key in plain_losses:
        assert torch.equal(plain_losses[key], ck_losses[key]), key
    for want, got in ((plain_g, ck_g), (plain_d, ck_d)):
        assert all(torch.equal(want[k], got[k]) for k in want)
    assert all(torch.equal(a, b) for a, b in zip(plain_p, ck_p))  # and so the same update
    assert ck_saved < 0.7 * plain_saved


def test_compile_option_compiles_the_generator_and_changes_no_number(monkeypatch):
    """The plumbing of `train.compile`, with torch.compile's AOT-autograd backend so that no code
    is generated (inductor on a 2-core CPU takes minutes): the generator runs through dynamo and
    AOT autograd with the fused ops' registered custom ops, and the step's numbers are unchanged."""
    compiled, real_compile = [], torch.compile

    def aot_eager(model, mode=None, dynamic=None):
        compiled.append((model, mode))
        return real_compile(model, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", aot_eager)
    wav = audio()
    plain = GanStep(*models())(wav)
    torch._dynamo.reset()
    step = GanStep(*models(), compile="reduce-overhead")
    assert compiled == [(step.generator, "reduce-overhead")]
    result = step(wav)
    for key in ("loss_g", "loss_d", "grad_norm_g", "grad_norm_d"):
        torch.testing.assert_close(result[key], plain[key], rtol=1e-5, atol=1e-7)


def test_bad_options():
    with pytest.raises(ValueError, match="compile must be one of None, default, reduce-overhead"):
        GanStep(*models(), compile="fast")
    with pytest.raises(ValueError, match="train.compile must be null or one of default, reduce-overhead"):
        TrainOptions(compile="yes")
    with pytest.raises(ValueError, match="train.discriminator_checkpointing must be true or false"):
        TrainOptions(discriminator_checkpointing="maybe")
    assert TrainOptions(compile="default", discriminator_checkpointing=True).compile == "default"
