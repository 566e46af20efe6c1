"""Experiment behind the README's harmonic-source rows: the demo generator with an explicit pitch
source (sines at the F0 and its harmonics, NSF-style) added after each upsampler, trained on the mel
loss alone on the demo corpus, scored on the held-out clips.

Not part of the package: it tests whether a pitch source, rather than more steps, is what the demo
model lacks (mel-only training locks its harmonics to the 93.75 Hz frame rate). The source is driven
by the F0 that torchcrepe finds in the training audio; with `--predictor-channels N` a small mel → F0
classifier trains alongside it, and evaluation reports the scores with the true and the predicted F0.

    python recipes/demo/harmonic_source.py --name run1 --device cuda --seconds 360
    python recipes/demo/harmonic_source.py --help
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vocoder.audio import MelSpectrogram, resample
from vocoder.audio.io import load_audio, save_audio
from vocoder.bench.train import load_config
from vocoder.checkpoint import load_generator
from vocoder.data.files import read_filelist
from vocoder.evaluation.pair import score_pair
from vocoder.evaluation.periodicity import CREPE_RATE, CREPE_WINDOW, HOP, pitch_and_periodicity
from vocoder.models import Generator
from vocoder.models.losses import MultiScaleMelSpectrogramLoss

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "vocoder" / "data" / "demo"
MEL_CONFIG = load_config("mel", "24khz_100band")  # the demo model's mel, as the package ships it
DEMO_SHAPE = Generator.settings(load_config("model", "demo"))
RATE, HOP_SIZE = MEL_CONFIG["sampling_rate"], MEL_CONFIG["hop_size"]
SEGMENT, LAMBDA_MEL = load_config("data", "demo")["segment_size"], 45.0
PITCH_BINS, F0_MIN, F0_MAX = 96, 50.0, 600.0
METRICS = ("pesq", "m_stft", "mel_l1", "periodicity", "vuv_f1")


def pitch_track(wav: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """(T,) at 24 kHz → F0 in Hz (unvoiced stretches take their neighbours' value, so the phase runs
    on smoothly) and voiced (0/1), both (T,) on the sample grid."""
    pitch, _ = pitch_and_periodicity(resample(wav, RATE, CREPE_RATE).to(device), "tiny", device)
    pitch = pitch.numpy().astype(np.float64)
    voiced = ~np.isnan(pitch)
    frame_times = (CREPE_WINDOW / 2 + HOP * np.arange(len(pitch))) / CREPE_RATE
    times = np.arange(wav.shape[-1]) / RATE
    filled = np.interp(frame_times, frame_times[voiced], pitch[voiced]) if voiced.any() else np.full(len(pitch), 100.0)
    f0 = np.interp(times, frame_times, filled)
    on = np.interp(times, frame_times, voiced.astype(np.float64)) > 0.5
    return torch.from_numpy(f0).float(), torch.from_numpy(on).float()


class HarmonicSource(nn.Module):
    """Sines at k·F0 (k = 1..harmonics, below Nyquist) where voiced, noise everywhere, merged to one channel."""

    def __init__(self, harmonics: int = 8, sine_amplitude: float = 0.1, voiced_noise: float = 0.003) -> None:
        super().__init__()
        self.harmonics, self.sine_amplitude, self.voiced_noise = harmonics, sine_amplitude, voiced_noise
        self.merge = nn.Linear(harmonics, 1)

    def forward(self, f0: Tensor, voiced: Tensor) -> Tensor:
        """(B, T) each → (B, 1, T). Training starts each segment at a random phase."""
        k = torch.arange(1, self.harmonics + 1, device=f0.device, dtype=torch.float64)
        start = torch.rand(f0.shape[0], 1, device=f0.device, dtype=torch.float64) if self.training else 0.0
        cycles = torch.cumsum(f0.double() / RATE, dim=1) + start
        sines = torch.sin(2 * math.pi * cycles[..., None] * k).float() * self.sine_amplitude
        sines = sines * (f0[..., None] * k.float() < RATE / 2)
        v = voiced[..., None]
        noise = (v * self.voiced_noise + (1 - v) * self.sine_amplitude / 3) * torch.randn_like(sines)
        return torch.tanh(self.merge(sines * v + noise)).transpose(1, 2)


class PitchPredictor(nn.Module):
    """log-mel (B, M, frames) → logits over PITCH_BINS log-spaced F0 bins and one voicing logit."""

    def __init__(self, num_mels: int = 100, channels: int = 128, layers: int = 3, kernel: int = 3) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv1d(num_mels, channels, kernel, padding=kernel // 2)]
        for _ in range(layers):
            body += [nn.LeakyReLU(0.1), nn.Conv1d(channels, channels, kernel, padding=kernel // 2)]
        self.net = nn.Sequential(*body, nn.LeakyReLU(0.1), nn.Conv1d(channels, PITCH_BINS + 1, 1))

    def forward(self, mel: Tensor) -> Tensor:
        return self.net(mel)

    @staticmethod
    def bin_of(f0: Tensor) -> Tensor:
        step = math.log2(F0_MAX / F0_MIN) / (PITCH_BINS - 1)
        return ((torch.log2(f0.clamp(F0_MIN, F0_MAX)) - math.log2(F0_MIN)) / step).round().long()

    @staticmethod
    def decode(logits: Tensor) -> tuple[Tensor, Tensor]:
        """→ F0 (B, T) and voiced (B, T) on the sample grid: the probability-weighted log-F0 of the
        five bins around the most likely one, linearly interpolated between frame centres."""
        probs = logits[:, :PITCH_BINS].softmax(1)
        bins = torch.arange(PITCH_BINS, device=logits.device)[None, :, None]
        near = probs * ((bins - probs.argmax(1, keepdim=True)).abs() <= 2)
        step = math.log2(F0_MAX / F0_MIN) / (PITCH_BINS - 1)
        f0 = 2 ** ((near * (math.log2(F0_MIN) + bins * step)).sum(1) / near.sum(1))
        f0 = F.interpolate(f0[:, None], scale_factor=HOP_SIZE, mode="linear", align_corners=False)[:, 0]
        return f0, (logits[:, PITCH_BINS] > 0).float().repeat_interleave(HOP_SIZE, dim=1)


class SourceGenerator(Generator):
    """The generator with the harmonic source, brought to each stage's rate by a strided conv, added
    after every upsampler (as NSF-HiFiGAN does)."""

    def __init__(self, **shape) -> None:
        super().__init__(**shape)
        self.source = HarmonicSource()
        rates, channels = shape["upsample_rates"], shape["upsample_initial_channel"]
        self.source_convs = nn.ModuleList()
        for i in range(len(rates)):
            channels //= 2
            stride = math.prod(rates[i + 1:])
            self.source_convs.append(nn.Conv1d(1, channels, 2 * stride, stride, padding=stride // 2)
                                     if stride > 1 else nn.Conv1d(1, channels, 1))

    def forward(self, mel: Tensor, f0: Tensor, voiced: Tensor) -> Tensor:
        excitation = self.source(f0, voiced)
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](x) + self.source_convs[i](excitation)
            x = sum(self._block(i * self.num_kernels + j, x) for j in range(self.num_kernels)) / self.num_kernels
        return torch.clamp(self.conv_post(self.activation_post(x)), -1.0, 1.0)


def crop_batch(clips, tracks, batch: int, rng: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """`batch` random SEGMENT-sample crops (zero/edge padded when a clip is shorter) with their F0 and voicing."""
    out = [], [], []
    for i in torch.randint(len(clips), (batch,), generator=rng).tolist():
        wav, (f0, voiced) = clips[i], tracks[i]
        short = max(SEGMENT - wav.shape[-1], 0)
        wav, voiced = F.pad(wav, (0, short)), F.pad(voiced, (0, short))
        f0 = torch.cat([f0, f0[-1:].expand(short)])
        start = int(torch.randint(wav.shape[-1] - SEGMENT + 1, (1,), generator=rng))
        for store, x in zip(out, (wav, f0, voiced)):
            store.append(x[start:start + SEGMENT])
    return tuple(torch.stack(x) for x in out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="names the result file OUT/NAME.json")
    p.add_argument("--source", choices=["none", "harmonic"], default="harmonic")
    p.add_argument("--init", choices=["scratch", "demo"], default="scratch",
                   help="demo: start from vocoder/data/demo_pretrained.pt (the source's convs start at zero)")
    p.add_argument("--channels", type=int, default=112, help="upsample_initial_channel")
    p.add_argument("--predictor-channels", type=int, default=128, help="0: no pitch predictor")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=360.0, help="training time (evaluation not counted)")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--train-files", type=int, default=None)
    p.add_argument("--val-files", type=int, default=None)
    p.add_argument("--keep", default=None, help="a val clip (e.g. slt_027.flac) whose outputs are written as wavs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("runs/harmonic_source"))
    a = p.parse_args()
    torch.manual_seed(0)
    device = torch.device(a.device)
    a.out.mkdir(parents=True, exist_ok=True)
    train_clips = [load_audio(path, RATE)[0] for path in read_filelist(DATA / "train.txt")[:a.train_files]]
    val_files = read_filelist(DATA / "val.txt")[:a.val_files]
    val_names = [path.name for path in val_files]
    val_clips = [load_audio(path, RATE)[0] for path in val_files]
    train_tracks = [pitch_track(w, device) for w in train_clips]
    val_tracks = [pitch_track(w, device) for w in val_clips]
    mel, mel_loss = MelSpectrogram.from_config(MEL_CONFIG).to(device), MultiScaleMelSpectrogramLoss(RATE).to(device)
    shape = {**DEMO_SHAPE, "upsample_initial_channel": a.channels}
    harmonic = a.source == "harmonic"
    generator = SourceGenerator(**shape) if harmonic else Generator(**shape)
    if a.init == "demo":
        if harmonic:
            for conv in generator.source_convs:
                nn.init.zeros_(conv.weight), nn.init.zeros_(conv.bias)
        missing, unexpected = generator.load_state_dict(
            load_generator(DATA.parent / "demo_pretrained.pt").state_dict(), strict=False)
        assert not unexpected and all(k.startswith("source") for k in missing), (missing, unexpected)
    predictor = PitchPredictor(channels=a.predictor_channels) if harmonic and a.predictor_channels else None
    modules = nn.ModuleList([generator] + ([predictor] if predictor else [])).to(device)
    print(f"{a.name}: generator {sum(x.numel() for x in generator.parameters()):,} parameters, pitch predictor "
          f"{sum(x.numel() for x in predictor.parameters()) if predictor else 0:,}", flush=True)
    optimizer = torch.optim.AdamW(modules.parameters(), a.lr, betas=(0.8, 0.99))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.9999)

    def vocode(log_mel: Tensor, f0: Tensor, voiced: Tensor) -> Tensor:
        return generator(log_mel, f0, voiced) if harmonic else generator(log_mel)

    @torch.no_grad()
    def evaluate(step: int, f0_from: str) -> dict:
        modules.eval()
        rows = []
        for name, wav, (f0, voiced) in zip(val_names, val_clips, val_tracks):
            length = wav.shape[-1] // HOP_SIZE * HOP_SIZE
            log_mel = mel(wav[:length].to(device)[None])
            if f0_from == "predicted":
                f0, voiced = PitchPredictor.decode(predictor(log_mel))
            else:
                f0, voiced = f0[None, :length].to(device), voiced[None, :length].to(device)
            fake = vocode(log_mel, f0[:, :length], voiced[:, :length])[0, 0].cpu()
            rows.append(dict(score_pair(wav[:length], fake, RATE, metrics=METRICS, device=device)))
            if name == a.keep:
                save_audio(a.out / f"{a.name}_{Path(name).stem}_step{step}_{f0_from}.wav", fake, RATE, overwrite=True)
        modules.train()
        means = {m: round(float(np.nanmean([r[m] for r in rows])), 4) for m in METRICS}
        return {"step": step, "f0": f0_from, **means,
                "pesq_per_file": {n: round(r["pesq"], 3) for n, r in zip(val_names, rows)}}

    def evaluate_all(step: int) -> list[dict]:
        rows = [evaluate(step, "true")] + ([evaluate(step, "predicted")] if predictor else [])
        for row in rows:
            print(a.name, {k: v for k, v in row.items() if k != "pesq_per_file"}, flush=True)
        return rows

    results, step, rng, trained = evaluate_all(0), 0, torch.Generator().manual_seed(1), 0.0
    while trained < a.seconds:
        begun = time.time()
        wav, f0, voiced = (x.to(device) for x in crop_batch(train_clips, train_tracks, a.batch, rng))
        log_mel = mel(wav)
        loss = mel_loss(wav[:, None], vocode(log_mel, f0, voiced)) * LAMBDA_MEL
        if predictor:
            logits = predictor(log_mel)
            f0_frames, voiced_frames = f0[:, HOP_SIZE // 2::HOP_SIZE], voiced[:, HOP_SIZE // 2::HOP_SIZE]
            pitch_ce = F.cross_entropy(logits[:, :PITCH_BINS], PitchPredictor.bin_of(f0_frames), reduction="none")
            loss = loss + (pitch_ce * voiced_frames).sum() / voiced_frames.sum().clamp(min=1)
            loss = loss + F.binary_cross_entropy_with_logits(logits[:, PITCH_BINS], voiced_frames)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(modules.parameters(), 1000.0)
        optimizer.step()
        schedule.step()
        step, trained = step + 1, trained + time.time() - begun
        if step % a.eval_every == 0:
            print(f"{a.name}: step {step}, {trained / step:.3f} s per training step", flush=True)
            results += evaluate_all(step)
    if results[-1]["step"] != step:
        results += evaluate_all(step)
    (a.out / f"{a.name}.json").write_text(json.dumps({"args": {**vars(a), "out": str(a.out)}, "steps": step,
                                                      "seconds_per_step": trained / max(step, 1),
                                                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
