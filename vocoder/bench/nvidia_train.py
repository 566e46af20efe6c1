"""NVIDIA's own training step as a benchmark baseline: the body of the training loop of BigVGAN's
train.py (the `bigvgan` package from PyPI, 2.4.1), built from the same model, mel and discriminator
configs as ours, so that `vocoder.bench train` shows NVIDIA's real step beside `GanStep`.

`bigvgan` (and `nnAudio`, which its CQT discriminator needs) are test-only references: imported
here, when the `nvidia` variant runs, and nowhere in the package.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable

import torch
from torch import Tensor

from ..models.discriminators import with_defaults
from ..runtime import conv_precision

MISSING = ("the nvidia variant needs NVIDIA's BigVGAN package (a test-only reference): "
           "pip install --no-deps bigvgan==2.4.1 nnAudio==0.3.4 (and huggingface_hub, tqdm)")


def available() -> str | None:
    """None when NVIDIA's package (and nnAudio for its CQT discriminator) import; else why not."""
    try:
        import bigvgan  # noqa: F401
        import bigvgan.discriminators  # noqa: F401
    except ImportError as error:
        return f"{MISSING} ({error})"
    return None


def hyperparameters(model: dict, mel: dict, discriminator: dict) -> dict:
    """NVIDIA's flat config (`h`) for our model, mel and discriminator configs, with the optimiser and
    loss settings of its v2 configs (AdamW 1e-4, betas 0.8/0.99, clip 500, λ_mel 15, multi-scale mel)."""
    plain = lambda v: [plain(x) for x in v] if isinstance(v, (list, tuple)) else v  # noqa: E731
    h = {k: plain(v) for k, v in {**model, **mel, **with_defaults(discriminator)}.items()}
    h.update(learning_rate=1e-4, adam_b1=0.8, adam_b2=0.99, lr_decay=0.9999996, clip_grad_norm=500,
             lambda_melloss=15, use_multiscale_melloss=True, fmax_for_loss=None)
    h.setdefault("mrd_resolutions", h.get("resolutions"))
    return h


class NvidiaTrainStep:
    """NVIDIA's generator and discriminators with random weights (seed 0), their AdamW optimisers, and
    one update as its train.py loop body does it: mel of the audio, generator forward, discriminator
    loss and step (each discriminator clipped), multi-scale mel + feature + adversarial loss, generator
    step. Float32 with cuDNN's TF32 convolutions (PyTorch's default, which train.py keeps)."""

    def __init__(self, model: dict, mel: dict, discriminator: dict, device: torch.device) -> None:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        import bigvgan
        import bigvgan.discriminators as nd
        import bigvgan.loss as nl
        from bigvgan.env import AttrDict

        h = AttrDict(hyperparameters(model, mel, discriminator))
        self.h, self.device, self.nl = h, device, nl
        torch.manual_seed(0)
        with contextlib.redirect_stdout(sys.stderr):  # its constructors print their settings: keep the table clean
            self.generator = bigvgan.BigVGAN(h).to(device).train()
            self.mpd = nd.MultiPeriodDiscriminator(h).to(device).train()
            second = nd.MultiScaleSubbandCQTDiscriminator if h.use_cqtd_instead_of_mrd else nd.MultiResolutionDiscriminator
            self.second = second(h).to(device).train()
        betas = (h.adam_b1, h.adam_b2)
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), h.learning_rate, betas=betas)
        self.optim_d = torch.optim.AdamW(itertools.chain(self.second.parameters(), self.mpd.parameters()),
                                         h.learning_rate, betas=betas)
        self.mel_loss = nl.MultiScaleMelSpectrogramLoss(sampling_rate=h.sampling_rate)
        from bigvgan.meldataset import mel_spectrogram
        self.mel_spectrogram = mel_spectrogram

    def mel(self, wav: Tensor) -> Tensor:
        h = self.h
        return self.mel_spectrogram(wav.squeeze(1), h.n_fft, h.num_mels, h.sampling_rate, h.hop_size, h.win_size,
                                    h.fmin, h.fmax)

    def parameters(self) -> list[Tensor]:
        return [*self.generator.parameters(), *self.mpd.parameters(), *self.second.parameters()]

    def __call__(self, wav: Tensor) -> None:
        """One GAN update on audio (B, 1, T)."""
        h, nl = self.h, self.nl
        with conv_precision("tf32", self.device):
            x = self.mel(wav)
            fake = self.generator(x)
            self.optim_d.zero_grad()
            real_p, fake_p, _, _ = self.mpd(wav, fake.detach())
            loss_p = nl.discriminator_loss(real_p, fake_p)[0]
            real_s, fake_s, _, _ = self.second(wav, fake.detach())
            loss_s = nl.discriminator_loss(real_s, fake_s)[0]
            (loss_s + loss_p).backward()
            torch.nn.utils.clip_grad_norm_(self.mpd.parameters(), h.clip_grad_norm)
            torch.nn.utils.clip_grad_norm_(self.second.parameters(), h.clip_grad_norm)
            self.optim_d.step()
            self.optim_g.zero_grad()
            loss_mel = self.mel_loss(wav, fake) * h.lambda_melloss
            _, fake_p, fmap_rp, fmap_fp = self.mpd(wav, fake)
            _, fake_s, fmap_rs, fmap_fs = self.second(wav, fake)
            loss = (nl.feature_loss(fmap_rp, fmap_fp) + nl.feature_loss(fmap_rs, fmap_fs)
                    + nl.generator_loss(fake_p)[0] + nl.generator_loss(fake_s)[0] + loss_mel)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), h.clip_grad_norm)
            self.optim_g.step()

    def generator_step(self, mel: Tensor) -> Callable[[], None]:
        """One generator forward + backward (mean |audio|) on `mel`, as the bench's generator step."""
        def step() -> None:
            with conv_precision("tf32", self.device):
                self.generator(mel).abs().mean().backward()
            self.generator.zero_grad(set_to_none=True)
        return step
