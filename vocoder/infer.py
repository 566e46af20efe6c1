"""`python -m vocoder.infer checkpoint=CKPT input=IN output=OUT`: audio or mel files in, wav files out.

Audio inputs (wav/flac/ogg/mp3) are resynthesised (resampled to the model's rate, mel, vocoded);
mel inputs (`.npy`/`.pt`, a BigVGAN log-mel of shape [num_mels, frames]) are vocoded. `input` is a
file, a folder searched recursively, or a `.txt` list of paths (one a line, relative to the list's
folder); outputs mirror the input paths under the `output` folder as `.wav`. `checkpoint` is a path
or a Hugging Face hub id (`nvidia/bigvgan_v2_24khz_100band_256x`, at `revision`; see `vocoder.hub`).

A bad file (unreadable, empty, NaN/Inf, wrong number of mel bands, ...) is reported by path and
skipped; the others are still written, and the exit status is 1 when any failed. An output that
exists is kept unless `overwrite=true`. Outputs are written atomically.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from .audio import AudioError, load_audio, save_audio
from .data.files import AUDIO_SUFFIXES, read_filelist
from .vocoder import Vocoder, check_mel

MEL_SUFFIXES = (".npy", ".pt")
INPUT_SUFFIXES = AUDIO_SUFFIXES + MEL_SUFFIXES
CHANNELS = ("mix", "keep")


class InferError(RuntimeError):
    """A problem with the run as a whole (no inputs, outputs that would replace inputs): nothing is done."""


@dataclass(frozen=True)
class Job:
    """One input file and the wav it becomes; `error` set when it cannot be done (reported, skipped)."""

    source: Path
    target: Path
    error: str | None = None


def find_inputs(input: str | os.PathLike, exclude: tuple[Path, ...] = ()) -> tuple[list[Path], Path]:
    """(input files, the folder their output paths are mirrored from).

    A folder is searched recursively for audio and mel files, leaving out `exclude` (files, or
    folders such as the output folder); a `.txt` file lists paths; any other file is the one input.
    """
    path = Path(input).expanduser()
    if not path.exists():
        raise InferError(f"input {path} does not exist")
    if path.is_dir():
        here = path.resolve()  # an excluded folder holding the input folder would exclude everything
        skip = [p.resolve() for p in exclude if p.resolve() != here and p.resolve() not in here.parents]
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in INPUT_SUFFIXES and p.is_file()
                       and not any(p.resolve() == s or s in p.resolve().parents for s in skip))
        if not files:
            raise InferError(f"no audio ({', '.join(AUDIO_SUFFIXES)}) or mel ({', '.join(MEL_SUFFIXES)}) "
                             f"files found under {path}")
        return files, path
    if path.suffix.lower() == ".txt":
        try:
            files = read_filelist(path)
        except ValueError as e:
            raise InferError(str(e)) from e
        root = Path(os.path.commonpath([str(p.absolute().parent) for p in files]))
        return files, root
    return [path], path.parent


def plan_jobs(files: list[Path], root: Path, output: str | os.PathLike) -> list[Job]:
    """Output path of each input (its path under `root`, mirrored under `output`, as `.wav`).

    Raises InferError when an output would be one of the inputs; a second input mapping to an
    output already taken (a.wav and a.flac) becomes a Job with an error.
    """
    out = Path(output).expanduser()
    if out.exists() and not out.is_dir():
        raise InferError(f"output {out} is a file; output must be a folder")
    sources = {p.resolve(): p for p in files}
    jobs, taken, clashes = [], {}, []
    for file in files:
        try:
            relative = file.absolute().relative_to(root.absolute())
        except ValueError:
            relative = Path(file.name)
        target = out / relative.with_suffix(".wav")
        resolved = target.resolve()
        if resolved in sources:
            clashes.append(f"{target} is the input file {sources[resolved]}")
        if resolved in taken:
            jobs.append(Job(file, target, f"its output {target} is also the output of {taken[resolved]}; "
                                          "rename one of them"))
            continue
        taken[resolved] = file
        jobs.append(Job(file, target))
    if clashes:
        shown = "; ".join(clashes[:5]) + (f"; ... ({len(clashes)} in all)" if len(clashes) > 5 else "")
        raise InferError(f"refusing to run: outputs would replace inputs: {shown}. Choose another output folder")
    return jobs


def load_mel_file(path: Path, num_mels: int) -> torch.Tensor:
    """A mel from `.npy` or `.pt` (a tensor, or a dict with a 'mel' tensor), shape [num_mels, frames]
    (or [1, num_mels, frames]), checked: band count, frames ≥ 1, finite values."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mel file not found")
    try:
        if path.suffix.lower() == ".npy":
            mel = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            mel = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(mel, dict) and "mel" in mel:
                mel = mel["mel"]
    except Exception as e:  # numpy and torch raise many kinds for a corrupt file
        raise ValueError(f"{path}: cannot read the mel file ({e})") from e
    if not isinstance(mel, torch.Tensor):
        raise ValueError(f"{path}: holds a {type(mel).__name__}, not a mel tensor [num_mels, frames]")
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2:
        raise ValueError(f"{path}: expected a mel of shape [{num_mels}, frames], found shape {tuple(mel.shape)}")
    check_mel(mel, num_mels, str(path))
    return mel.float()


@dataclass
class Summary:
    """What a run did; `line()` is the closing report."""

    total: int = 0
    done: int = 0
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    elapsed: float = 0.0
    resampled: int = 0
    mixed_down: int = 0

    def line(self) -> str:
        speed = ""
        if self.audio_seconds > 0 and self.elapsed > 0:
            rtf = self.elapsed / self.audio_seconds  # processing time per second of audio
            pace = f"{1 / rtf:.3g}× faster than" if rtf < 1 else f"{rtf:.3g}× slower than"
            speed = f" (real-time factor {rtf:.3g}: {pace} real time)"
        return (f"done: {self.done} of {self.total} files, {self.audio_seconds:.1f} s of audio in "
                f"{self.elapsed:.1f} s{speed}; {self.resampled} resampled, {self.mixed_down} mixed down to mono, "
                f"{len(self.skipped)} skipped (output exists), {len(self.failed)} failed")


@dataclass
class _Loaded:
    job: Job
    index: int
    mels: list[torch.Tensor]  # one per output channel
    notes: list[str]


def _without_path(message: str, path: Path) -> str:
    """`message` without a leading 'path: ' (the report names the path itself)."""
    for prefix in (f"{path}: ", f"{path.absolute()}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _reason(error: BaseException, path: Path) -> str:
    return _without_path(str(error).strip() or type(error).__name__, path)


class _Run:
    """The file loop of `infer_files`: load, batch, vocode, write, report."""

    def __init__(self, vocoder: Vocoder, jobs: list[Job], overwrite: bool, channels: str,
                 progress_every: int, out: TextIO, err: TextIO) -> None:
        self.vocoder, self.jobs, self.overwrite, self.channels = vocoder, jobs, overwrite, channels
        self.progress_every, self.out, self.err = max(1, int(progress_every)), out, err
        self.summary = Summary(total=len(jobs))
        self.width = len(str(len(jobs)))

    def _tag(self, index: int) -> str:
        return f"[{index + 1:>{self.width}}/{len(self.jobs)}]"

    def fail(self, index: int, path: Path, reason: str) -> None:
        self.summary.failed.append((path, reason))
        print(f"{self._tag(index)} FAILED {path}: {reason}", file=self.err, flush=True)

    def load(self, index: int, job: Job) -> _Loaded:
        voc = self.vocoder
        if job.source.suffix.lower() in MEL_SUFFIXES:
            return _Loaded(job, index, [load_mel_file(job.source, voc.num_mels)], [])
        if job.source.suffix.lower() not in AUDIO_SUFFIXES:
            raise ValueError(f"unsupported file type {job.source.suffix!r} (audio: {', '.join(AUDIO_SUFFIXES)}; "
                             f"mel: {', '.join(MEL_SUFFIXES)})")
        wav, info = load_audio(job.source, voc.sampling_rate, mono=self.channels == "mix")
        self.summary.resampled += info.resampled
        self.summary.mixed_down += info.mixed_down
        try:
            mel = voc.mel_spectrogram(wav)
        except ValueError as e:  # too short for one STFT frame
            raise AudioError(f"{job.source}: {e}") from e
        return _Loaded(job, index, list(mel) if mel.ndim == 3 else [mel], info.notes)

    def flush(self, pending: list[_Loaded]) -> None:
        if not pending:
            return
        try:
            wavs = self.vocoder.vocode_many([m for item in pending for m in item.mels])
        except Exception as e:
            for item in pending:
                self.fail(item.index, item.job.source, f"vocoding failed: {type(e).__name__}: {e}")
            return
        for item in pending:
            audio = torch.stack(wavs[:len(item.mels)])
            wavs = wavs[len(item.mels):]
            try:
                save_audio(item.job.target, audio[0] if len(audio) == 1 else audio,
                           self.vocoder.sampling_rate, overwrite=self.overwrite)
            except (OSError, ValueError) as e:
                self.fail(item.index, item.job.source, f"cannot write {item.job.target}: {_reason(e, item.job.target)}")
                continue
            seconds = audio.shape[-1] / self.vocoder.sampling_rate
            self.summary.done += 1
            self.summary.audio_seconds += seconds
            if item.notes or (item.index + 1) % self.progress_every == 0 or item.index + 1 == len(self.jobs):
                notes = "".join(f"; {_without_path(n, item.job.source)}" for n in item.notes)
                print(f"{self._tag(item.index)} {item.job.source} -> {item.job.target} ({seconds:.2f} s{notes})",
                      file=self.out, flush=True)

    def run(self) -> Summary:
        start = time.perf_counter()
        pending: list[_Loaded] = []
        for index, job in enumerate(self.jobs):
            if job.error:
                self.fail(index, job.source, job.error)
                continue
            if job.target.exists() and not self.overwrite:
                self.summary.skipped.append(job.source)
                print(f"{self._tag(index)} skipped {job.source}: {job.target} exists (overwrite=true replaces it)",
                      file=self.out, flush=True)
                continue
            try:
                pending.append(self.load(index, job))
            except Exception as e:  # a bad file must not stop the others
                self.fail(index, job.source, _reason(e, job.source))
                continue
            if sum(len(item.mels) for item in pending) >= self.vocoder.batch_size:
                self.flush(pending)
                pending = []
        self.flush(pending)
        self.summary.elapsed = time.perf_counter() - start
        return self.summary


def infer_files(vocoder: Vocoder, jobs: list[Job], overwrite: bool = False, channels: str = "mix",
                progress_every: int = 1, out: TextIO | None = None, err: TextIO | None = None) -> Summary:
    """Vocode every job's input into its target; returns the Summary (progress goes to `out`,
    failures to `err`). Inputs are batched `vocoder.batch_size` mels at a time."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")
    return _Run(vocoder, jobs, overwrite, channels, progress_every,
                sys.stdout if out is None else out, sys.stderr if err is None else err).run()


def run(checkpoint: str, input: str, output: str, device: str = "auto", precision: str = "fp32",
        overwrite: bool = False, channels: str = "mix", chunk_frames: int = 1024,
        overlap_frames: int | None = None, batch_size: int = 8, progress_every: int = 1,
        revision: str | None = None) -> Summary:
    """The whole command from plain values: find inputs, load the model (a path, or a hub id at
    `revision`: `vocoder.hub`), infer, print the summary."""
    if channels not in CHANNELS:
        raise InferError(f"channels must be one of {CHANNELS}, got {channels!r}")
    ckpt = Path(checkpoint).expanduser()
    files, root = find_inputs(input, exclude=(ckpt, Path(output).expanduser()))
    jobs = plan_jobs(files, root, output)
    vocoder = Vocoder.from_checkpoint(checkpoint, device=device, precision=precision, revision=revision,
                                      chunk_frames=chunk_frames, overlap_frames=overlap_frames, batch_size=batch_size)
    print(f"{len(jobs)} input files; {vocoder}", flush=True)
    summary = infer_files(vocoder, jobs, overwrite, channels, progress_every)
    print(summary.line(), flush=True)
    for path, reason in summary.failed[:50]:  # again at the end, where they cannot scroll away
        print(f"  failed: {path}: {reason}", file=sys.stderr, flush=True)
    if len(summary.failed) > 50:
        print(f"  ... and {len(summary.failed) - 50} more failed", file=sys.stderr, flush=True)
    return summary


@hydra.main(config_path="configs", config_name="infer", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry: `key=value` overrides against vocoder/configs/infer.yaml; exit status 1 when a file
    failed, 2 when the run could not start (bad checkpoint, no inputs, outputs replacing inputs)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        print(f"vocoder.infer: error: set {' '.join(f'{k}=...' for k in missing)} "
              "(usage: python -m vocoder.infer checkpoint=CKPT input=IN output=OUT [key=value ...])",
              file=sys.stderr, flush=True)
        sys.exit(2)
    options = OmegaConf.to_container(cfg, resolve=True)
    try:
        summary = run(**options)
    except (InferError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"vocoder.infer: error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
