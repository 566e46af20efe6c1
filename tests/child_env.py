"""The environment for a test's child process: the checkout first on PYTHONPATH, what was there kept.

Replacing PYTHONPATH outright drops packages a machine supplies that way (the GPU machines install
librosa, soundfile and Hydra under a PYTHONPATH folder), so the child could not import them.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_env(**extra: str) -> dict[str, str]:
    """os.environ with the checkout prepended to PYTHONPATH, plus `extra` variables."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}
