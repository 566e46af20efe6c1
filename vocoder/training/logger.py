"""TensorBoard scalars, audio and mel images (rank 0 only), and a progress line on stdout."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


class RunLogger:
    """Writes `<run dir>/tensorboard/` and prints `step N/M | x steps/s | losses`. The event file is
    created with the first value logged, so a run refused before it trains leaves none behind."""

    def __init__(self, run_dir: Path, max_steps: int, enabled: bool = True) -> None:
        self.enabled, self.max_steps = enabled, max_steps
        self._directory, self._writer = run_dir / "tensorboard", None
        self._last_time, self._last_step = time.perf_counter(), None

    @property
    def writer(self) -> SummaryWriter | None:
        if self.enabled and self._writer is None:
            self._writer = SummaryWriter(str(self._directory))
        return self._writer

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        if self.writer:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def progress(self, step: int, values: dict[str, float]) -> float:
        """Print one progress line; return steps per second since the previous line."""
        now = time.perf_counter()
        rate = 0.0
        if self._last_step is not None and step > self._last_step:
            rate = (step - self._last_step) / (now - self._last_time)
        self._last_time, self._last_step = now, step
        if self.enabled:
            shown = " | ".join(f"{k} {v:.4g}" for k, v in values.items())
            print(f"step {step}/{self.max_steps} | {rate:.2f} steps/s | {shown}", flush=True)
        return rate

    def audio(self, step: int, tag: str, wav: Tensor, sampling_rate: int) -> None:
        if self.writer:
            self.writer.add_audio(tag, wav.detach().float().cpu().reshape(1, -1).clamp(-1, 1), step,
                                  sample_rate=sampling_rate)

    def mels(self, step: int, tag: str, real: Tensor, fake: Tensor) -> None:
        """Target and generated log-mel spectrograms, one above the other."""
        if not self.writer:
            return
        fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        for ax, mel, title in zip(axes, (real, fake), ("target", "generated")):
            ax.imshow(mel.detach().float().cpu().squeeze(0), origin="lower", aspect="auto")
            ax.set_title(title)
        fig.tight_layout()
        self.writer.add_figure(tag, fig, step)
        plt.close(fig)

    def close(self) -> None:
        if self._writer:
            self._writer.close()
