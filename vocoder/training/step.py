"""One BigVGAN-v2 GAN update: the discriminators on real vs generated audio, then the generator on
mel + adversarial + feature-matching losses (or, while the discriminators are frozen, on the mel loss
alone). The training loop's step, and what `vocoder.bench` times."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..models.losses import discriminator_loss, feature_loss, generator_loss
from ..runtime import autocast, check_precision, conv_precision

# called with (loss, "generator loss" | "discriminator loss", its parts) before each backward
FiniteCheck = Callable[[Tensor, str, dict[str, Tensor]], None]


class GanStep:
    """Models, AdamW optimisers and exponential schedules; calling it on audio (B, 1, T) runs one update.

    With `distributed=True` the models train through DistributedDataParallel (gradient all-reduce);
    the plain modules stay reachable as `generator` / `discriminators` for state dicts. `precision`:
    a `vocoder.runtime.PRECISIONS` name but fp16 (which needs loss scaling): 'tf32' is PyTorch's
    default on CUDA (TF32 convolutions), 'fp32' IEEE convolutions, 'bf16' autocast.
    """

    def __init__(self, generator: nn.Module, discriminators: Mapping[str, nn.Module], mel: nn.Module,
                 mel_loss: nn.Module, *, learning_rate: float = 1e-4, adam_betas: tuple[float, float] = (0.8, 0.99),
                 lr_decay: float = 0.9999996, clip_grad_norm: float = 500.0, lambda_mel: float = 15.0,
                 precision: str = "tf32", distributed: bool = False) -> None:
        check_precision(precision, training=True)
        self.generator, self.discriminators = generator, nn.ModuleDict(dict(discriminators))
        self.mel, self.mel_loss = mel, mel_loss
        self.clip_grad_norm, self.lambda_mel, self.precision = clip_grad_norm, lambda_mel, precision
        betas = tuple(adam_betas)
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), learning_rate, betas)
        self.optim_d = torch.optim.AdamW(self.discriminators.parameters(), learning_rate, betas)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, lr_decay)
        self.g_train, self.d_train = self.generator, dict(self.discriminators.items())
        if distributed:
            device = next(self.generator.parameters()).device
            ids = [device.index] if device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.generator, device_ids=ids)
            self.d_train = {k: DistributedDataParallel(d, device_ids=ids) for k, d in self.d_train.items()}

    def autocast(self) -> AbstractContextManager:
        """Autocast for the models' forward passes (bf16), or nothing."""
        return autocast(self.precision, next(self.generator.parameters()).device)

    def __call__(self, wav: Tensor, check: FiniteCheck | None = None, adversarial: bool = True) -> dict[str, Tensor]:
        """One update; the losses and gradient norms (detached). cuDNN's float32 convolutions follow
        `precision` for the whole step, backward included.

        `adversarial=False` is BigVGAN's `--freeze_step` phase: the discriminators are neither run nor
        updated (no D optimiser step) and the generator trains on the mel loss alone. Both schedules
        still step, as in NVIDIA's train.py, so the learning rates follow the step count either way.
        """
        with conv_precision(self.precision, wav.device):
            return self._step(wav, check, adversarial)

    def _step(self, wav: Tensor, check: FiniteCheck | None, adversarial: bool) -> dict[str, Tensor]:
        with torch.no_grad():
            mel = self.mel(wav.squeeze(1))
        with self.autocast():
            fake = self.g_train(mel)
        fake = fake[..., : wav.shape[-1]].float()
        result: dict[str, Tensor] = {}
        if adversarial:
            result = self._discriminator_update(wav, fake, check)

        loss_mel = self.mel_loss(wav, fake) * self.lambda_mel
        loss_g, g_parts = loss_mel, {"mel": loss_mel.detach()}
        if adversarial:
            with self.autocast():
                outs = {name: d(wav, fake) for name, d in self.d_train.items()}
            for name, (_, fake_out, fmap_real, fmap_fake) in outs.items():
                adv, _ = generator_loss(fake_out)
                fm = feature_loss(fmap_real, fmap_fake)
                g_parts[f"adv_{name}"], g_parts[f"fm_{name}"] = adv.detach(), fm.detach()
                loss_g = loss_g + adv + fm
            del outs
        if check:
            check(loss_g, "generator loss", g_parts)
        self.optim_g.zero_grad(set_to_none=True)
        loss_g.backward()
        grad_g = nn.utils.clip_grad_norm_(self.generator.parameters(), self.clip_grad_norm)
        self.optim_g.step()
        self.sched_g.step()
        with warnings.catch_warnings():  # frozen: PyTorch warns that D's schedule steps before its optimiser
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            self.sched_d.step()
        return {"loss_g": loss_g.detach(), **g_parts, "grad_norm_g": grad_g, **result}

    def _discriminator_update(self, wav: Tensor, fake: Tensor, check: FiniteCheck | None) -> dict[str, Tensor]:
        """One AdamW step of the discriminators on real vs (detached) generated audio."""
        loss_d, d_parts = 0.0, {}
        with self.autocast():
            outs = {name: d(wav, fake.detach()) for name, d in self.d_train.items()}
        for name, (real_out, fake_out, _, _) in outs.items():
            loss, _, _ = discriminator_loss(real_out, fake_out)
            d_parts[f"d_{name}"] = loss.detach()
            loss_d = loss_d + loss
        del outs
        if check:
            check(loss_d, "discriminator loss", d_parts)
        self.optim_d.zero_grad(set_to_none=True)
        loss_d.backward()
        grad_d = nn.utils.clip_grad_norm_(self.discriminators.parameters(), self.clip_grad_norm)
        self.optim_d.step()
        return {"loss_d": loss_d.detach(), **d_parts, "grad_norm_d": grad_d}

    def state_dict(self) -> dict:
        return {"optim_g": self.optim_g.state_dict(), "optim_d": self.optim_d.state_dict(),
                "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        for name in ("optim_g", "optim_d", "sched_g", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
