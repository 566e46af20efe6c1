"""`python -m vocoder.infer checkpoint=CKPT input=IN output=OUT`: audio or mel files in, wav files out.

Audio inputs (wav/flac/ogg/mp3) are resynthesised (resampled to the model's rate, mel, vocoded);
mel inputs (`.npy`/`.pt`, a BigVGAN log-mel of shape [num_mels, frames]) are vocoded. `input` is a
file, a folder searched recursively, or a `.txt` list of paths (one a line, relative to the list's
folder); outputs mirror the input paths under the `output` folder as `.wav` (the layout, and what
is refused to keep inputs safe: `vocoder.infer_paths`). `checkpoint` is a path or a Hugging Face
hub id (`nvidia/bigvgan_v2_24khz_100band_256x`, at `revision`; see `vocoder.hub`).

Arguments, inputs and the output folder are checked before anything is vocoded. A bad file
(unreadable, empty, NaN/Inf, wrong number of mel bands, a dangling link, ...) is reported by path
and skipped; the others are still written, and the exit status is 1 when any failed. A full disk
stops the run naming the file; what was written is kept. An output that exists is kept unless
`overwrite=true` and it is an earlier output of this tool (`vocoder.infer_paths.is_earlier_output`).
Outputs are written atomically, and without `overwrite` never over a file another run wrote
meanwhile; the temp files of a killed run are removed by the next run. docs/inference.md describes
what `overwrite=true` may replace and the list syntax.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import hydra
import torch
from omegaconf import DictConfig

from .atomic import remove_orphan_temp_files, temp_path
from .audio import AudioError, load_audio, save_audio
from .booleans import parse_bool
from .cli import EntryPoint, error_line
from .data.files import AUDIO_SUFFIXES
from .data.mel_files import read_mel_file
from .infer_paths import MEL_SUFFIXES, OUTPUT_TAG, InferError, Job, find_inputs, is_earlier_output, plan_jobs
from .runtime import PRECISION_NAMES, set_cudnn_benchmark
from .vocoder import Vocoder, check_mel, resolve_device

CHANNELS = ("mix", "keep")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # a write failing so stops the run: the next ones would fail too


def load_mel_file(path: Path, num_mels: int) -> torch.Tensor:
    """A mel from `.npy` or `.pt` (a tensor, or a dict with a 'mel' tensor), shape [num_mels, frames]
    (or [1, num_mels, frames]), checked: band count, frames ≥ 1, finite values."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mel file not found")
    mel = read_mel_file(path, num_mels)
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
    stopped: str | None = None  # why the run stopped before the last file (a full disk)
    not_attempted: int = 0

    def line(self) -> str:
        speed = ""
        if self.audio_seconds > 0 and self.elapsed > 0:
            rtf = self.elapsed / self.audio_seconds  # processing time per second of audio
            pace = f"{1 / rtf:.3g}× faster than" if rtf < 1 else f"{rtf:.3g}× slower than"
            speed = f" (real-time factor {rtf:.3g}: {pace} real time)"
        stopped = (f"; stopped: {self.stopped}, {self.not_attempted} files not attempted (the outputs written "
                   "are kept; rerun to do the rest)") if self.stopped else ""
        return (f"done: {self.done} of {self.total} files, {self.audio_seconds:.1f} s of audio in "
                f"{self.elapsed:.1f} s{speed}; {self.resampled} resampled, {self.mixed_down} mixed down to mono, "
                f"{len(self.skipped)} skipped (output exists), {len(self.failed)} failed{stopped}")


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

    def skip(self, index: int, job: Job, why: str) -> None:
        """Leave the file at `job.target` as it is, and say why."""
        self.summary.skipped.append(job.source)
        print(f"{self._tag(index)} skipped {job.source}: {job.target} {why}", file=self.out, flush=True)

    def load(self, index: int, job: Job) -> _Loaded:
        voc = self.vocoder
        if job.source.suffix.lower() in MEL_SUFFIXES:
            return _Loaded(job, index, [load_mel_file(job.source, voc.num_mels)], [])
        if job.source.suffix.lower() not in AUDIO_SUFFIXES:
            raise ValueError(f"unsupported file type {job.source.suffix!r} (audio: {', '.join(AUDIO_SUFFIXES)}; "
                             f"mel: {', '.join(MEL_SUFFIXES)})")
        wav, info = load_audio(job.source, voc.sampling_rate, mono=self.channels == "mix")
        for warning in info.warnings:
            print(f"{self._tag(index)} WARNING {job.source}: {_without_path(warning, job.source)}",
                  file=self.err, flush=True)
        self.summary.resampled += info.resampled
        self.summary.mixed_down += info.mixed_down
        try:
            mel = voc.mel_spectrogram(wav)
        except ValueError as e:  # too short for one STFT frame
            raise AudioError(f"{job.source}: {e}") from e
        return _Loaded(job, index, list(mel) if mel.ndim == 3 else [mel], info.notes)

    def write(self, item: _Loaded, audio: torch.Tensor) -> bool:
        """Save one output; a failure is reported for its file, and a full disk stops the run."""
        target = item.job.target
        try:
            save_audio(target, audio[0] if len(audio) == 1 else audio, self.vocoder.sampling_rate,
                       overwrite=self.overwrite, software=OUTPUT_TAG)
        except Exception as e:  # one file's failure must not lose the others
            if isinstance(e, FileExistsError):  # another run wrote it meanwhile (overwrite=false): kept
                self.skip(item.index, item.job, "was written by another run meanwhile")
                return False
            if isinstance(e, OSError) and e.errno in DISK_FULL:
                self.summary.stopped = f"disk full writing {target}"
                self.fail(item.index, item.job.source, f"disk full writing {target} (nothing of it was kept)")
            else:
                self.fail(item.index, item.job.source, f"cannot write {target}: {_reason(e, target)}")
            return False
        seconds = audio.shape[-1] / self.vocoder.sampling_rate
        self.summary.done += 1
        self.summary.audio_seconds += seconds
        if item.notes or (item.index + 1) % self.progress_every == 0 or item.index + 1 == len(self.jobs):
            notes = "".join(f"; {_without_path(n, item.job.source)}" for n in item.notes)
            print(f"{self._tag(item.index)} {item.job.source} -> {target} ({seconds:.2f} s{notes})",
                  file=self.out, flush=True)
        return True

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
            if self.summary.stopped:
                self.summary.not_attempted += 1
            else:
                self.write(item, audio)

    def run(self) -> Summary:
        start = time.perf_counter()
        pending: list[_Loaded] = []
        for index, job in enumerate(self.jobs):
            if self.summary.stopped:
                self.summary.not_attempted += len(self.jobs) - index
                break
            if job.error:
                self.fail(index, job.source, job.error)
                continue
            if job.target.exists() and not (self.overwrite and is_earlier_output(job.target)):
                self.skip(index, job, "exists (an earlier output: overwrite=true replaces it)"
                          if is_earlier_output(job.target) else "exists and is not an output of vocoder.infer: kept")
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
    failures and warnings to `err`). Inputs are batched `vocoder.batch_size` mels at a time. A full
    disk stops the run (`Summary.stopped`); the outputs written before are kept."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")
    return _Run(vocoder, jobs, overwrite, channels, progress_every,
                sys.stdout if out is None else out, sys.stderr if err is None else err).run()


def _integer(value: object, key: str, minimum: int) -> int:
    """`value` as an int ≥ `minimum` (an int, or a string of digits), else an InferError naming `key`."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InferError(f"{key} must be {kind}, got {value!r}")
    return value


def check_output_folder(output: Path) -> None:
    """Prove that `output` can be written (it, or the nearest folder above it that exists, takes a
    temp file, removed at once) without creating anything; an InferError naming the folder otherwise."""
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file")
        probe = temp_path(existing / "write-check")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as e:
        raise InferError(f"output folder {output} is not writable: {e.strerror or e}") from e


def _path_argument(value: object, key: str) -> Path:
    """A path argument (checkpoint, input, output): a non-empty string or number, else an InferError."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, os.PathLike)) or not str(value).strip():
        raise InferError(f"{key} must be a path, got {value!r}")
    return Path(value if isinstance(value, os.PathLike) else str(value)).expanduser()


def _remove_orphans(jobs: list[Job]) -> None:
    """Delete the temp files that a killed run left in the folders this run writes to, and say so."""
    count = freed = 0
    for folder in sorted({job.target.parent for job in jobs if not job.error}):
        removed, size = remove_orphan_temp_files(folder, ".wav")
        count, freed = count + removed, freed + size
    if count:
        print(f"removed {count} unfinished output files ({freed / 2**20:.1f} MiB) left by a run that was "
              "killed", flush=True)


def run(checkpoint: str, input: str, output: str, device: str = "auto", precision: str = "auto",
        overwrite: bool | str = False, channels: str = "mix", chunk_frames: int = 4096,
        overlap_frames: int | None = None, batch_size: int = 2, progress_every: int = 1,
        revision: str | None = None, cudnn_benchmark: bool | str = False) -> Summary:
    """The whole command from plain values: check the arguments, find the inputs, plan and check the
    outputs (refusals, a writable output folder), load the model (a path, or a hub id at `revision`:
    `vocoder.hub`), infer, print the summary.
    Everything that can be checked before vocoding is, so a mistake costs no work."""
    overwrite = parse_bool(overwrite, "overwrite")
    cudnn_benchmark = parse_bool(cudnn_benchmark, "cudnn_benchmark")
    if channels not in CHANNELS:
        raise InferError(f"channels must be one of {CHANNELS}, got {channels!r}")
    if precision not in PRECISION_NAMES:
        raise InferError(f"precision must be one of {PRECISION_NAMES}, got {precision!r}")
    resolve_device(device)
    chunk_frames, batch_size = _integer(chunk_frames, "chunk_frames", 1), _integer(batch_size, "batch_size", 1)
    progress_every = _integer(progress_every, "progress_every", 1)
    if overlap_frames is not None:
        overlap_frames = _integer(overlap_frames, "overlap_frames", 0)
    ckpt, out = _path_argument(checkpoint, "checkpoint"), _path_argument(output, "output")
    inputs = find_inputs(_path_argument(input, "input"), exclude=(ckpt, out))
    for note in inputs.notes:
        print(f"note: {note}", flush=True)
    jobs = plan_jobs(inputs, out, overwrite)
    if inputs.excluded:
        print(f"note: {inputs.excluded} audio/mel files under the output folder {out} are not inputs "
              f"(it is inside the input folder {inputs.root})", flush=True)
    if any(not job.error and (overwrite or not job.target.exists()) for job in jobs):
        check_output_folder(out)
    set_cudnn_benchmark(cudnn_benchmark)
    vocoder = Vocoder.from_checkpoint(ckpt, device=device, precision=precision, revision=revision, chunk_frames=chunk_frames,
                                      overlap_frames=overlap_frames, batch_size=batch_size)
    print(f"{len(jobs)} input files; {vocoder}", flush=True)
    _remove_orphans(jobs)
    summary = infer_files(vocoder, jobs, overwrite, channels, progress_every)
    print(summary.line(), flush=True)
    for path, reason in summary.failed[:50]:  # again at the end, where they cannot scroll away
        print(f"  failed: {path}: {reason}", file=sys.stderr, flush=True)
    if len(summary.failed) > 50:
        print(f"  ... and {len(summary.failed) - 50} more failed", file=sys.stderr, flush=True)
    return summary


CONFIG = Path(__file__).resolve().parent / "configs" / "infer.yaml"  # the one hydra.main reads (by absolute path,
# so that main() also runs in-process, where Hydra would look for a `vocoder.configs` module)
CLI = EntryPoint("vocoder.infer", CONFIG.stem,
                 "usage: python -m vocoder.infer checkpoint=CKPT input=IN output=OUT [key=value ...]")


@hydra.main(config_path=str(CONFIG.parent), config_name=CONFIG.stem, version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry: `key=value` overrides against vocoder/configs/infer.yaml; exit status 1 when a file
    failed (or a full disk stopped the run), 2 when the run could not start (a bad argument or
    checkpoint, no inputs, outputs that would replace inputs, an output folder not writable)."""
    options = CLI.options(cfg)
    try:
        summary = run(**options)
    except (InferError, OSError, ValueError, RuntimeError) as e:
        CLI.fail(error_line(e))
    if summary.failed or summary.stopped:
        sys.exit(1)


def cli() -> None:
    """`python -m vocoder.infer key=value ...`: the arguments checked (`vocoder.cli`), then `main`."""
    CLI.check_argv(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()
