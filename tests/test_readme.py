"""The README's test command is what CI runs, and the example its main command runs works."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    ci_command = (ROOT / ".ci/run").read_text().strip().splitlines()[-1]
    assert ci_command in (ROOT / "README.md").read_text()


def test_snake_example_runs():
    env = {k: v for k, v in os.environ.items() if k not in ("VOCODER_BACKEND", "TRITON_INTERPRET")}
    out = subprocess.run([sys.executable, str(ROOT / "examples/snake_in_your_model.py")], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "saved for backward" in out and "fused SnakeBeta 32 MiB" in out
