"""Benchmark output: a markdown table on stdout, and the same rows as JSON and CSV files."""

from __future__ import annotations

import csv
import json
import platform
from pathlib import Path

import torch


def environment(device: str = "cuda") -> dict[str, str]:
    """Device, fused-op path and versions, printed with every table so figures can be traced to their run."""
    import triton

    from ..kernels.backend import use_triton

    if torch.device(device).type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"cpu ({torch.get_num_threads()} threads)"
    probe = torch.empty(0, device=device)
    try:
        triton_path = use_triton(probe)
    except RuntimeError:  # VOCODER_BACKEND=triton on the CPU without the interpreter: ops will say so
        triton_path = False
    path = ("triton" if probe.is_cuda else "triton interpreter") if triton_path else "plain PyTorch"
    return {"device": where, "fused ops": path, "torch": torch.__version__, "triton": triton.__version__,
            "python": platform.python_version()}


def fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def columns(rows: list[dict[str, object]]) -> list[str]:
    """Every key of the rows, in order of first appearance (an out-of-memory row has fewer)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def markdown(rows: list[dict[str, object]]) -> str:
    """Rows (dicts with the same keys) as a markdown table."""
    if not rows:
        return "(no rows)"
    keys = columns(rows)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def write(rows: list[dict[str, object]], out_dir: Path, name: str, device: str = "cuda") -> str:
    """Write `name`.json / .csv / .md under `out_dir`; return the markdown text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    table = markdown(rows)
    header = f"{name}: " + ", ".join(f"{k} {v}" for k, v in env.items())
    (out_dir / f"{name}.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    with open(out_dir / f"{name}.csv", "w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=columns(rows))
            writer.writeheader()
            writer.writerows(rows)
    text = header + "\n\n" + table + "\n"
    (out_dir / f"{name}.md").write_text(text)
    return text
