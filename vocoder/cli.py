"""What the Hydra entry points share for a user's mistakes: one line `prog: error: ...` on stderr and
a non-zero exit, for Hydra's own override and composition errors too (checked before Hydra runs)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException


def fail(prog: str, message: object, status: int = 2) -> NoReturn:
    """Print `prog: error: message` to stderr and exit with `status`."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def error_line(err: BaseException) -> str:
    """An error's message; one re-raised from a DataLoader worker carries the worker's traceback in
    its text, of which only the last line (the worker's own message) is kept."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text or type(err).__name__


def hydra_error_line(err: BaseException) -> str:
    """A Hydra/OmegaConf error on one line: its lines joined, a list of options comma-separated, the
    search path and documentation links left out, the OmegaConf cause appended."""
    parts, options = [], []
    for line in str(err).splitlines():
        if line.startswith("Config search path"):
            break
        if line.startswith("\t"):
            options.append(line.strip())
            continue
        line = line.strip().rstrip(".:")
        if line and not line.startswith(("See https://", "full_key:", "object_type=", "reference_type=")):
            parts.append(line)
    text = "; ".join(parts)
    if options:
        text += ": " + ", ".join(options)
    if isinstance(err, OverrideParseException) and err.override not in text:
        text = f"override {err.override!r}: {text}"
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        text += f" ({str(cause).strip().splitlines()[0]})"
    return text


def check_overrides(prog: str, config_dir: Path, config_name: str, argv: Sequence[str]) -> None:
    """Compose the config from `argv`'s overrides as Hydra will, and `fail` in one line if that
    fails. Command lines with Hydra flags (`--cfg`, `-m`, ...) or `hydra.` overrides are left to Hydra."""
    if any(arg.startswith("-") for arg in argv):
        return
    overrides = [arg for arg in argv if not arg.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        fail(prog, hydra_error_line(err))
