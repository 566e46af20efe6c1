"""`python -m vocoder.evaluate`: score generated audio against its references with the metrics of
BigVGAN's and Vocos' tables (PESQ-wb, M-STFT, MCD, periodicity, V/UV F1, mel L1) and the envelope
correlation; when it resynthesises, also the RMS of the output for the mel of 1 s of silence.

    python -m vocoder.evaluate reference=REF generated=GEN output=OUT     # pair existing files
    python -m vocoder.evaluate checkpoint=CKPT input=REF output=OUT       # resynthesise REF, then score
    python -m vocoder.evaluate vocoder=griffin_lim input=REF output=OUT   # Griffin-Lim from the same mel

Files pair by relative path without the suffix (REF/a/b.flac with GEN/a/b.wav). Resynthesised audio
goes to OUT/generated/. Writes OUT/metrics.csv (a row per file) and OUT/summary.json (means and the
count) and prints a markdown table of the means. A generated file that leaves a metric undefined
(silent, ...) is scored at that metric's worst value where it has one (PESQ 1.0, V/UV F1 0, ...); a
mean that leaves files out says over how many (`1.866 (2 of 3)`), and the files are listed. A
missing or unreadable pair is reported by name and the others are still scored (exit status 1); a
bad argument is one line and exit status 2.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from .audio import GriffinLimVocoder, MelSpectrogram
from .booleans import parse_bool
from .checkpoint import load_model
from .cli import EntryPoint, error_line
from .data.files import AUDIO_SUFFIXES
from .evaluation import (DEFAULT_MEL, METRICS, FileScores, Pair, PairingError, audio_files, check_metrics, coverage_lines,
                         markdown_table, metrics_csv, pair_files, score_files, silent_mel_rms, summary_json)
from .evaluation.periodicity import PITCH_MODELS
from .evaluation.report import write_atomic
from .infer import infer_files
from .infer_paths import InferError, find_inputs, plan_jobs
from .runtime import resolve_device
from .vocoder import Vocoder

VOCODERS = ("model", "griffin_lim")
DEFAULT_RATE = 24000  # with DEFAULT_MEL: BigVGAN-v2 24 kHz's mel, when no mel settings are given
GENERATED = "generated"  # OUT/generated/: resynthesised audio
OUTPUTS = ("metrics.csv", "summary.json")


class EvaluateError(RuntimeError):
    """A problem with the arguments or the output folder: nothing is done; the message is one line."""


@dataclass(frozen=True)
class Result:
    """The outcome of `run`: the system's name, the scores, and where they were written."""

    system: str
    scores: FileScores
    output: Path
    table: str


def _mode(reference: str | None, generated: str | None, input: str | None, checkpoint: str | None,
          vocoder: str) -> str:
    """'pairs' or 'resynthesis', or an EvaluateError saying which arguments go together."""
    usage = ("give reference=REF generated=GEN, or input=REF with checkpoint=CKPT (or vocoder=griffin_lim)")
    if vocoder not in VOCODERS:
        raise EvaluateError(f"vocoder must be one of {', '.join(VOCODERS)}, got {vocoder!r}")
    if reference is not None or generated is not None:
        if input is not None or checkpoint is not None or vocoder != "model":
            raise EvaluateError(f"reference=/generated= score existing files and take no input=, checkpoint= "
                                f"or vocoder=; {usage}")
        if reference is None or generated is None:
            raise EvaluateError(f"set both reference= and generated=; {usage}")
        return "pairs"
    if input is None:
        raise EvaluateError(f"nothing to evaluate: {usage}")
    if vocoder == "model" and checkpoint is None:
        raise EvaluateError(f"input= needs checkpoint=CKPT (or vocoder=griffin_lim); {usage}")
    return "resynthesis"


def _check_output(output: Path, overwrite: bool, resynthesis: bool) -> None:
    """Refuse an output that is a file, or that holds an earlier run's results unless `overwrite`."""
    if output.exists() and not output.is_dir():
        raise EvaluateError(f"output={output} is a file; output must be a folder")
    if overwrite:
        return
    for name in OUTPUTS:
        if (output / name).exists():
            raise EvaluateError(f"{output / name} exists (an earlier evaluation); overwrite=true replaces it, "
                                "or choose another output folder")
    generated = output / GENERATED
    if resynthesis and generated.is_dir() and any(p.is_file() for p in generated.rglob("*")):
        raise EvaluateError(f"{generated} holds audio of an earlier run; overwrite=true replaces it, "
                            "or choose another output folder")


def _mel(settings: dict[str, Any]) -> MelSpectrogram:
    try:
        return MelSpectrogram.from_config(settings)
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluateError(f"mel settings {settings}: {e}") from e


def _resynthesize(voc: Vocoder | GriffinLimVocoder, input: str, output: Path, exclude: tuple[Path, ...]
                  ) -> tuple[list[Pair], float]:
    """Vocode every audio file of `input` into output/generated/ (mirrored paths); its Pairs, and the time taken."""
    try:
        jobs = plan_jobs(find_inputs(input, exclude=(*exclude, output)), output / GENERATED, overwrite=True)
    except InferError as e:
        raise EvaluateError(f"input={input}: {e}") from e
    audio = [job for job in jobs if job.source.suffix.lower() in AUDIO_SUFFIXES]
    pairs = [Pair(job.source.name, job.source, None, "not an audio file: a reference must be audio")
             for job in jobs if job.source.suffix.lower() not in AUDIO_SUFFIXES]
    if not audio:
        raise EvaluateError(f"input={input}: no audio files ({', '.join(AUDIO_SUFFIXES)}) to resynthesise")
    print(f"resynthesising {len(audio)} files with {voc} into {output / GENERATED}", flush=True)
    started = time.perf_counter()
    summary = infer_files(voc, audio, overwrite=True)
    failed = {path: reason for path, reason in summary.failed}
    for job in audio:
        name = job.target.relative_to(output / GENERATED).with_suffix(job.source.suffix).as_posix()
        if job.source in failed:
            pairs.append(Pair(name, job.source, None, f"resynthesis failed: {failed[job.source]}"))
        else:
            pairs.append(Pair(name, job.source, job.target))
    return pairs, time.perf_counter() - started


@dataclass(frozen=True)
class _Setup:
    """What both modes check first: the output folder, the metrics, the pitch model, the device."""

    output: Path
    metrics: tuple[str, ...]
    pitch_model: str
    device: Any
    overwrite: bool


def _setup(output: str, metrics: Sequence[str] | str, pitch_model: str, device: str, overwrite: bool | str,
           resynthesis: bool) -> _Setup:
    try:
        chosen = check_metrics(metrics)
    except ValueError as e:
        raise EvaluateError(f"metrics: {e}") from e
    try:
        overwrite = parse_bool(overwrite, "overwrite")
    except ValueError as e:
        raise EvaluateError(str(e)) from e
    if pitch_model not in PITCH_MODELS and {"periodicity", "vuv_f1"} & set(chosen):
        raise EvaluateError(f"pitch_model must be one of {', '.join(PITCH_MODELS)}, got {pitch_model!r}")
    out = Path(output).expanduser()
    _check_output(out, overwrite, resynthesis)
    return _Setup(out, chosen, pitch_model, resolve_device(device), overwrite)


def evaluate_pairs(reference: str, generated: str, output: str, metrics: Sequence[str] | str = METRICS,
                   mel: dict[str, Any] | None = None, pitch_model: str = "tiny", name: str | None = None,
                   device: str = "auto", overwrite: bool | str = False) -> Result:
    """Score existing generated files against their references (paired by relative path) at the rate
    of `mel` (default: BigVGAN-v2 24 kHz's); write, print the table."""
    setup = _setup(output, metrics, pitch_model, device, overwrite, resynthesis=False)
    comparison_mel = _mel({"sampling_rate": DEFAULT_RATE, **DEFAULT_MEL} if mel is None else mel)
    try:
        refs, ref_root = audio_files(reference, "reference")
        gens, gen_root = audio_files(generated, "generated")
    except PairingError as e:
        raise EvaluateError(str(e)) from e
    inputs = {p.resolve() for p in (*refs, *gens)}
    if any((setup.output / n).resolve() in inputs for n in OUTPUTS):
        raise EvaluateError(f"output={output}: its {', '.join(OUTPUTS)} would replace an input file")
    pairs = pair_files(refs, ref_root, gens, gen_root)
    return _score_and_report(name or Path(generated).expanduser().resolve().name, pairs, comparison_mel, setup, {})


def evaluate_resynthesis(input: str, output: str, checkpoint: str | None = None, vocoder: str = "model",
                         metrics: Sequence[str] | str = METRICS, mel: dict[str, Any] | None = None,
                         pitch_model: str = "tiny", griffin_lim_iters: int = 64, name: str | None = None,
                         device: str = "auto", precision: str = "fp32", overwrite: bool | str = False) -> Result:
    """Resynthesise the audio of `input` with the checkpoint's model (or Griffin-Lim from the same mel)
    into output/generated/, score it against `input`, write, print the table and the silent-mel RMS."""
    _mode(None, None, input, checkpoint, vocoder)
    setup = _setup(output, metrics, pitch_model, device, overwrite, resynthesis=True)
    ckpt = Path(checkpoint).expanduser() if checkpoint is not None else None
    if vocoder == "model":
        voc = Vocoder.from_checkpoint(ckpt, device=setup.device, precision=precision)
        comparison_mel = voc.mel.to("cpu")
        system = name or (ckpt.parent.name if ckpt.is_file() and ckpt.stem == "bigvgan_generator" else ckpt.stem)
    else:
        mel = {"sampling_rate": DEFAULT_RATE, **DEFAULT_MEL} if mel is None else mel
        comparison_mel = MelSpectrogram.from_config(load_model(ckpt, "cpu")[1]) if ckpt else _mel(mel)
        voc = GriffinLimVocoder(comparison_mel, griffin_lim_iters)
        system = name or "griffin_lim"
    pairs, seconds = _resynthesize(voc, input, setup.output, (ckpt,) if ckpt else ())
    silent_rms = silent_mel_rms(lambda m: voc.vocode_many([m])[0], voc.mel_spectrogram, voc.sampling_rate)
    return _score_and_report(system, pairs, comparison_mel, setup,
                             {"resynthesis_seconds": round(seconds, 3), "silent_mel_rms": silent_rms})


def _score_and_report(system: str, pairs: list[Pair], comparison_mel: MelSpectrogram, setup: _Setup,
                      extra: dict[str, Any]) -> Result:
    """Score the pairs, write metrics.csv and summary.json, print the table, how each mean counts
    its files, and the failures."""
    chosen, out = setup.metrics, setup.output
    print(f"scoring {len(pairs)} files ({', '.join(chosen)}) at {comparison_mel.sampling_rate} Hz", flush=True)
    scores = score_files(pairs, comparison_mel, chosen, pitch_model=setup.pitch_model, device=setup.device)
    record = {"sampling_rate": comparison_mel.sampling_rate, "mel": comparison_mel.config,
              "pitch_model": setup.pitch_model, "failed": scores.failed, "notes": scores.notes,
              "audio_seconds": round(scores.audio_seconds, 3), "scoring_seconds": round(scores.seconds, 3), **extra}
    write_atomic(out / "metrics.csv", metrics_csv(scores.names, scores.rows, chosen))
    write_atomic(out / "summary.json", summary_json(system, scores.names, scores.rows, chosen, **record))
    table = markdown_table(system, scores.rows, chosen)
    counting = "".join(f"{line}\n" for line in coverage_lines(scores.names, scores.rows, chosen))
    per_file = scores.seconds / max(1, len(scores.rows))
    silent_rms = extra.get("silent_mel_rms")
    silence = "" if silent_rms is None else f"output RMS for the mel of 1 s of silence: {silent_rms:.5f}\n"
    print(f"\n{table}\n\n{counting}{silence}scored {len(scores.rows)} of {len(pairs)} files in {scores.seconds:.1f} s "
          f"({per_file:.1f} s per file); {len(scores.failed)} failed; wrote {out / 'metrics.csv'} and "
          f"{out / 'summary.json'}", flush=True)
    for pair_name, reason in list(scores.failed.items())[:50]:  # again at the end, where they cannot scroll away
        print(f"  failed: {pair_name}: {reason}", file=sys.stderr, flush=True)
    return Result(system, scores, out, table)


def run(output: str, reference: str | None = None, generated: str | None = None, input: str | None = None,
        checkpoint: str | None = None, vocoder: str = "model", metrics: Sequence[str] | str = METRICS,
        mel: dict[str, Any] | None = None, pitch_model: str = "tiny", griffin_lim_iters: int = 64,
        name: str | None = None, device: str = "auto", precision: str = "fp32", overwrite: bool | str = False) -> Result:
    """The whole command from plain values: which mode the arguments ask for (`evaluate_pairs` or
    `evaluate_resynthesis`), and that mode."""
    if _mode(reference, generated, input, checkpoint, vocoder) == "pairs":
        return evaluate_pairs(reference, generated, output, metrics, mel, pitch_model, name, device, overwrite)
    return evaluate_resynthesis(input, output, checkpoint, vocoder, metrics, mel, pitch_model, griffin_lim_iters,
                                name, device, precision, overwrite)


USAGE = ("usage: python -m vocoder.evaluate reference=REF generated=GEN output=OUT | "
         "checkpoint=CKPT input=REF output=OUT | vocoder=griffin_lim input=REF output=OUT")
CLI = EntryPoint("vocoder.evaluate", "evaluate", USAGE)


@hydra.main(config_path="configs", config_name="evaluate", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    """Hydra entry: `key=value` overrides against vocoder/configs/evaluate.yaml; exit status 1 when a pair
    failed, 2 when the run could not start (bad arguments, output holding an earlier run)."""
    options = CLI.options(cfg)
    try:
        result = run(**options)
    except (EvaluateError, InferError, FileNotFoundError, ValueError, RuntimeError) as e:
        CLI.fail(error_line(e))
    if result.scores.failed or not result.scores.rows:
        sys.exit(1)


def main() -> None:
    """`python -m vocoder.evaluate key=value ...`: the arguments checked (`vocoder.cli`), then `hydra_main`."""
    CLI.check_argv(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
