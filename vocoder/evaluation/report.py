"""The evaluation's outputs: metrics.csv (a row per file), summary.json (means and count), a markdown table."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .pair import HIGHER_IS_BETTER

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


def metrics_csv(names: Sequence[str], rows: Sequence[Mapping[str, float]], metrics: Sequence[str]) -> str:
    """CSV text: a `file` column, then one column per metric (`nan` where undefined)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", *metrics])
    for name, row in zip(names, rows):
        writer.writerow([name, *(f"{float(row[m]):.6g}" for m in metrics)])
    return out.getvalue()


def summary_json(system: str, rows: Sequence[Mapping[str, float]], metrics: Sequence[str], **extra) -> str:
    """JSON text: system, count (files scored), means ({metric: mean}), undefined ({metric: count}), then `extra`."""
    averages, undefined = means(rows, metrics)
    clean = {m: (None if math.isnan(v) else v) for m, v in averages.items()}
    return json.dumps({"system": system, "count": len(rows), "means": clean,
                       "undefined": {m: n for m, n in undefined.items() if n}, **extra}, indent=2) + "\n"


def markdown_table(system: str, rows: Sequence[Mapping[str, float]], metrics: Sequence[str]) -> str:
    """One-row markdown table of the means: | system | files | PESQ-wb ↑ | ... |."""
    averages, _ = means(rows, metrics)
    head = ["system", "files", *(f"{TITLES[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in metrics)]
    cells = [system, str(len(rows)), *("—" if math.isnan(averages[m]) else f"{averages[m]:.3f}" for m in metrics)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |"])
