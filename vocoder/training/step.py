"""One BigVGAN-v2 GAN update: the discriminators on real vs generated audio, then the generator on
mel + adversarial + feature-matching losses (or, while the discriminators are frozen, on the mel loss
alone). The training loop's step, and what `vocoder.bench` times."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint

from ..layers.weight_norm import weight_norm_once
from ..models.losses import discriminator_loss, sub_discriminator_generator_losses
from ..runtime import autocast, check_precision, conv_precision
from .split_backward import discriminator_backward_in_two_passes

# torch.compile modes for the generator (None: not compiled); "reduce-overhead" adds CUDA graphs
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune-no-cudagraphs")
# called with (loss, "generator loss" | "discriminator loss", its parts) before each backward
FiniteCheck = Callable[[Tensor, str, dict[str, Tensor]], None]


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """`module`'s parameters need no gradient inside (each one's requires_grad restored after)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class GanStep:
    """Models, AdamW optimisers and exponential schedules; calling it on audio (B, 1, T) runs one update.

    With `distributed=True` the models train through DistributedDataParallel (gradient all-reduce);
    the plain modules stay reachable as `generator` / `discriminators` for state dicts. `precision`:
    a `vocoder.runtime.PRECISIONS` name but fp16 (which needs loss scaling): 'tf32' is PyTorch's
    default on CUDA (TF32 convolutions), 'fp32' IEEE convolutions, 'bf16' autocast.

    Exact economies (the same losses and gradients as BigVGAN's step): every weight-normed weight
    is computed once per phase (`weight_norm_once`); in the generator update the discriminators'
    parameters are frozen and the real audio's features are computed without a graph (BigVGAN
    also backpropagates into the discriminators there and then discards those gradients).
    Discriminators built with `checkpointing=True` recompute each sub-discriminator in backward,
    and then so does the generator update's feature-matching loss; `compile` runs the generator
    through `torch.compile` with that mode; `split_discriminator_backward` (not under DDP) runs the
    discriminators' backward on real audio, then on generated audio: the same gradients with half
    the discriminator graph alive (`vocoder.training.split_backward`), a few % slower;
    `channels_last` stores the discriminators' 2-D convolution weights, and so their feature maps, in
    channels-last (NHWC) memory format, where cuDNN runs them without layout transposes.
    A generator with a conditioning (`Generator.targets` not empty) is driven by the batch's
    targets and reports auxiliary losses; `lambda_auxiliary` × each joins the generator's loss.
    """

    def __init__(self, generator: nn.Module, discriminators: Mapping[str, nn.Module], mel: nn.Module,
                 mel_loss: nn.Module, *, learning_rate: float = 1e-4, adam_betas: tuple[float, float] = (0.8, 0.99),
                 lr_decay: float = 0.9999996, clip_grad_norm: float = 500.0, lambda_mel: float = 15.0,
                 lambda_auxiliary: float = 1.0, precision: str = "tf32", distributed: bool = False,
                 compile: str | None = None, split_discriminator_backward: bool = False,
                 channels_last: bool = False) -> None:
        check_precision(precision, training=True)
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(map(str, COMPILE_MODES))}, got {compile!r}")
        self.generator, self.discriminators = generator, nn.ModuleDict(dict(discriminators))
        self.mel, self.mel_loss = mel, mel_loss
        self.clip_grad_norm, self.lambda_mel, self.precision = clip_grad_norm, lambda_mel, precision
        self.lambda_auxiliary = lambda_auxiliary
        self.compile = compile
        self.discriminator_checkpointing = any(getattr(d, "checkpointing", False) for d in discriminators.values())
        # real, then generated audio's discriminator backward (vocoder.training.split_backward); not through DDP
        self.split_discriminator_backward = bool(split_discriminator_backward) and not distributed
        if channels_last:  # the same parameters (the optimisers see them), their storage reordered
            for d in self.discriminators.values():
                d.to(memory_format=torch.channels_last)
        betas = tuple(adam_betas)
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), learning_rate, betas)
        self.optim_d = torch.optim.AdamW(self.discriminators.parameters(), learning_rate, betas)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, lr_decay)
        self.g_train, self.d_train = self.generator, dict(self.discriminators.items())
        if distributed:
            device = next(self.generator.parameters()).device
            ids = [device.index] if device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.g_train, device_ids=ids)
            self.d_train = {k: DistributedDataParallel(d, device_ids=ids) for k, d in self.d_train.items()}
        if compile is not None:
            self.g_train = torch.compile(self.g_train, mode=compile, dynamic=False)

    def autocast(self) -> AbstractContextManager:
        """Autocast for the models' forward passes (bf16), or nothing."""
        return autocast(self.precision, next(self.generator.parameters()).device)

    def __call__(self, wav: Tensor, check: FiniteCheck | None = None, adversarial: bool = True,
                 mel: Tensor | None = None, targets: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """One update; the losses and gradient norms (detached). cuDNN's float32 convolutions follow
        `precision` for the whole step, backward included. `mel` (B, num_mels, T / hop): the generator's
        input instead of the mel of `wav` (teacher-forced fine-tuning on a TTS model's mels, as
        NVIDIA's --fine_tuning); the losses still compare with `wav`.

        `adversarial=False` is BigVGAN's `--freeze_step` phase: the discriminators are neither run nor
        updated (no D optimiser step) and the generator trains on the mel loss alone. Both schedules
        still step, as in NVIDIA's train.py, so the learning rates follow the step count either way.
        `targets`: the batch's values of `generator.targets` (what its conditioning learns from).
        """
        with conv_precision(self.precision, wav.device):
            return self._step(wav, check, adversarial, mel, targets or {})

    def _step(self, wav: Tensor, check: FiniteCheck | None, adversarial: bool, mel: Tensor | None,
              targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if mel is None:
            with torch.no_grad():
                mel = self.mel(wav.squeeze(1))
        # a compiled generator computes its weights once inside its graph
        with weight_norm_once(*([] if self.compile else [self.generator])):
            with self.autocast():
                fake, auxiliary = self.g_train(mel, targets=targets)
            fake = fake[..., : wav.shape[-1]].float()
            result: dict[str, Tensor] = {}
            if adversarial:
                result = self._discriminator_update(wav, fake, check)
            with ExitStack() as stack:
                if adversarial:  # the discriminators' gradients here would be discarded: frozen through
                    # the backward, which recomputes checkpointed sub-discriminators with the same weights
                    stack.enter_context(frozen(self.discriminators))
                    stack.enter_context(weight_norm_once(self.discriminators))
                loss_g, g_parts = self._generator_loss(wav, fake, adversarial)
                for name, loss in auxiliary.items():
                    loss = loss * self.lambda_auxiliary
                    loss_g, g_parts = loss_g + loss, {**g_parts, name: loss.detach()}
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
        with weight_norm_once(self.discriminators):
            if self.split_discriminator_backward:  # the same gradients, half the live graph; checked after
                self.optim_d.zero_grad(set_to_none=True)
                parts = discriminator_backward_in_two_passes(self.discriminators, wav, fake.detach(), self.autocast,
                                                             self.discriminator_checkpointing)
                for name, loss in parts.items():
                    d_parts[f"d_{name}"] = loss
                    loss_d = loss_d + loss
                if check:
                    check(loss_d, "discriminator loss", d_parts)
            for name, d in ({} if self.split_discriminator_backward else self.d_train).items():
                with self.autocast():
                    real_out, fake_out, _, _ = d(wav, fake.detach(), features=False)
                loss, _, _ = discriminator_loss(real_out, fake_out)
                d_parts[f"d_{name}"] = loss.detach()
                loss_d = loss_d + loss
            if not self.split_discriminator_backward:
                if check:
                    check(loss_d, "discriminator loss", d_parts)
                self.optim_d.zero_grad(set_to_none=True)
                loss_d.backward()
        # each discriminator clipped on its own, as NVIDIA's train.py does
        norms = {f"grad_norm_{name}": nn.utils.clip_grad_norm_(d.parameters(), self.clip_grad_norm)
                 for name, d in self.discriminators.items()}
        self.optim_d.step()
        grad_d = torch.stack(list(norms.values())).square().sum().sqrt()  # the norm over all of them
        return {"loss_d": loss_d.detach(), **d_parts, "grad_norm_d": grad_d, **norms}

    def _generator_loss(self, wav: Tensor, fake: Tensor, adversarial: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """λ·mel loss, plus (adversarial) Σ over sub-discriminators of adversarial + feature-matching terms."""
        loss_mel = self.mel_loss(wav, fake) * self.lambda_mel
        loss_g, g_parts = loss_mel, {"mel": loss_mel.detach()}
        if not adversarial:
            return loss_g, g_parts
        for name, multi in self.discriminators.items():
            adv, fm = 0.0, 0.0
            for sub in multi.discriminators:
                if self.discriminator_checkpointing:
                    a, f = checkpoint(self._sub_losses, sub, wav, fake, use_reentrant=False)
                else:
                    a, f = self._sub_losses(sub, wav, fake)
                adv, fm = adv + a, fm + f
            g_parts[f"adv_{name}"], g_parts[f"fm_{name}"] = adv.detach(), fm.detach()
            loss_g = loss_g + adv + fm
        return loss_g, g_parts

    def _sub_losses(self, sub: nn.Module, wav: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        def discriminate(x: Tensor) -> tuple[Tensor, list[Tensor]]:
            with self.autocast():
                return sub(x)
        return sub_discriminator_generator_losses(discriminate, wav, fake)

    def state_dict(self) -> dict:
        return {"optim_g": self.optim_g.state_dict(), "optim_d": self.optim_d.state_dict(),
                "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        for name in ("optim_g", "optim_d", "sched_g", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
