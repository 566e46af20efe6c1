"""The evaluation's outputs: metrics.csv (a row per file), summary.json (means and count), a markdown table,
and which files a mean leaves out or scores at a metric's worst value."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .pair import HIGHER_IS_BETTER, WORST

TITLES = {"pesq": "PESQ-wb", "m_stft": "M-STFT", "mcd": "MCD (dB)", "periodicity": "periodicity",
          "vuv_f1": "V/UV F1", "mel_l1": "mel L1", "env_corr": "envelope corr."}


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def means(rows: Sequence[Mapping[str, float]], metrics: Sequence[str]) -> tuple[dict[str, float], dict[str, int]]:
    """({metric: mean over the rows where it is defined (NaN if none)}, {metric: rows where it is undefined})."""
    averages, undefined = {}, {}
    for m in metrics:
        values = [float(r[m]) for r in rows if math.isfinite(float(r[m]))]
        averages[m] = sum(values) / len(values) if values else math.nan
        undefined[m] = len(rows) - len(values)
    return averages, undefined


def left_out(names: Sequence[str], rows: Sequence[Mapping[str, float]], metrics: Sequence[str]) -> dict[str, list[str]]:
    """{metric: the files its mean leaves out (undefined: NaN)}, for metrics that leave any out."""
    out = {m: [n for n, r in zip(names, rows) if not math.isfinite(float(r[m]))] for m in metrics}
    return {m: files for m, files in out.items() if files}


def scored_at_worst(names: Sequence[str], rows: Sequence[Mapping[str, float]], metrics: Sequence[str]
                    ) -> dict[str, list[str]]:
    """{metric: the files scored at its worst value (`Scores.worst`)}, for metrics that have any."""
    out = {m: [n for n, r in zip(names, rows) if m in getattr(r, "worst", ())] for m in metrics}
    return {m: files for m, files in out.items() if files}


def coverage_lines(names: Sequence[str], rows: Sequence[Mapping[str, float]], metrics: Sequence[str],
                   shown: int = 10) -> list[str]:
    """One line per metric whose mean is not a plain mean over every file: which files it scored at
    the worst value, and which it left out."""
    def listed(files: list[str]) -> str:
        return ", ".join(files[:shown]) + (f", ... ({len(files)} in all)" if len(files) > shown else "")

    lines = []
    worst, missing = scored_at_worst(names, rows, metrics), left_out(names, rows, metrics)
    for m in metrics:
        if m in worst:
            lines.append(f"{TITLES[m]}: {len(worst[m])} of {len(rows)} files scored at the worst value "
                         f"{WORST[m]:g} (the generated audio has no score: silent, constant or too short): "
                         f"{listed(worst[m])}")
        if m in missing:
            lines.append(f"{TITLES[m]}: mean over {len(rows) - len(missing[m])} of {len(rows)} files; left out "
                         f"(undefined for the pair): {listed(missing[m])}")
    return lines


def metrics_csv(names: Sequence[str], rows: Sequence[Mapping[str, float]], metrics: Sequence[str]) -> str:
    """CSV text: a `file` column, then one column per metric (`nan` where undefined)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", *metrics])
    for name, row in zip(names, rows):
        writer.writerow([name, *(f"{float(row[m]):.6g}" for m in metrics)])
    return out.getvalue()


def summary_json(system: str, names: Sequence[str], rows: Sequence[Mapping[str, float]], metrics: Sequence[str],
                 **extra) -> str:
    """JSON text: system, count (files scored), means ({metric: mean over `counted` files}), counted
    ({metric: files in its mean}), undefined ({metric: files left out}), scored_at_worst ({metric:
    files scored at its worst value}), then `extra`."""
    averages, undefined = means(rows, metrics)
    clean = {m: (None if math.isnan(v) else v) for m, v in averages.items()}
    return json.dumps({"system": system, "count": len(rows), "means": clean,
                       "counted": {m: len(rows) - undefined[m] for m in metrics},
                       "undefined": left_out(names, rows, metrics),
                       "scored_at_worst": scored_at_worst(names, rows, metrics), **extra}, indent=2) + "\n"


def markdown_table(system: str, rows: Sequence[Mapping[str, float]], metrics: Sequence[str]) -> str:
    """One-row markdown table of the means: | system | files | PESQ-wb ↑ | ... |; a mean that leaves
    files out (undefined for them) says over how many: `1.866 (2 of 3)`."""
    averages, undefined = means(rows, metrics)

    def cell(m: str) -> str:
        if math.isnan(averages[m]):
            return "—"
        return f"{averages[m]:.3f}" + (f" ({len(rows) - undefined[m]} of {len(rows)})" if undefined[m] else "")

    head = ["system", "files", *(f"{TITLES[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in metrics)]
    cells = [system, str(len(rows)), *(cell(m) for m in metrics)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |"])
