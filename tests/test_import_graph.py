"""What importing the entry points loads: neither torchcrepe nor pesq (only a model with a pitch source
and the metrics need them), and CREPE's constants here equal torchcrepe's."""

import subprocess
import sys

import pytest

from child_env import ROOT, child_env


@pytest.mark.parametrize("module", ["vocoder.infer", "vocoder.train"])
def test_importing_an_entry_point_loads_neither_torchcrepe_nor_pesq(module):
    code = (f"import sys, {module}; loaded = [m for m in ('torchcrepe', 'pesq') if m in sys.modules]; "
            f"assert not loaded, 'import {module} loaded ' + ', '.join(loaded)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr


def test_crepe_constants_are_torchcrepes():
    import torchcrepe

    from vocoder.audio.pitch import CREPE_RATE, CREPE_WINDOW
    assert (CREPE_RATE, CREPE_WINDOW) == (torchcrepe.SAMPLE_RATE, torchcrepe.WINDOW_SIZE)
