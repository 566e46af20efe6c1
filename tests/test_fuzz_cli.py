"""Fuzzing the command line shared by `vocoder.train`, `vocoder.infer` and `vocoder.evaluate` (`vocoder.cli`):
paths Hydra cannot read as typed (non-ASCII letters, '=', quotes, '#', a newline) are one line and exit
status 2 with the quoting that works, and that quoting does work; unknown and unset keys, sweeps, and
a single metric name without brackets."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra.core.override_parser.overrides_parser import OverridesParser

from child_env import child_env
from model_configs import save_tiny_generator

import vocoder.evaluate as ve
import vocoder.infer as vi
import vocoder.train as vt
from vocoder.cli import hydra_quoted, shell_word

SR = 24000
ROOT = Path(__file__).resolve().parents[1]
ODD_NAMES = ["ü.wav", "a=b.wav", "it's.wav", "a#b.wav", 'say "hi".wav', "it's \"both\".wav", "a,b.wav", "a\nb.wav",
             "back\\slash\\.wav"]

pytestmark = pytest.mark.usefixtures("one_thread")


def call(monkeypatch, capsys, entry, *args: str) -> tuple[int, list[str], str]:
    """`python -m vocoder.X ARGS` in this process: (exit status, stderr lines, stdout)."""
    monkeypatch.setattr(sys, "argv", [entry.__file__, *args])
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")
    capsys.readouterr()
    try:
        (entry.cli if entry is vi else entry.main)()
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def one_line(code: int, err: list[str], prog: str, *expected: str) -> str:
    assert code == 2 and len(err) == 1 and err[0].startswith(f"{prog}: error: "), (code, err)
    for text in expected:
        assert text in err[0], (text, err[0])
    return err[0]


def suggested(line: str) -> list[str]:
    """The shell words the error line suggests ('... write it as WORD'), as the shell would pass them."""
    word = line.rsplit(" write it as ", 1)[1]
    if word.startswith("$'"):  # bash's ANSI-C quoting: let bash read it
        out = subprocess.run(["bash", "-c", f"printf '%s' {word}"], capture_output=True, text=True, check=True)
        return [out.stdout]
    return shlex.split(word)


def tone(seconds: float = 0.3) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * SR)) / SR)


@pytest.mark.parametrize("name", ODD_NAMES, ids=repr)
def test_the_suggested_quoting_reads_back_the_path(name):
    arg = f"input=/data/{name}"
    quoted = hydra_quoted(arg)
    (override,) = OverridesParser.create().parse_overrides([quoted])
    assert override.value() == f"/data/{name}"
    word = shell_word(quoted)
    assert "\n" not in word
    assert suggested(f"x write it as {word}") == [quoted]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_infer_odd_path_is_one_line_and_its_quoting_runs(monkeypatch, capsys, checkpoint, tmp_path):
    source = tmp_path / "in ü=#'x.wav"
    sf.write(source, tone(), SR)
    common = [f"checkpoint={checkpoint}", f"output={tmp_path / 'out'}", "device=cpu"]
    code, err, out = call(monkeypatch, capsys, vi, *common, f"input={source}")
    line = one_line(code, err, "vocoder.infer", "needs Hydra's quotes")
    assert out == "" and not (tmp_path / "out").exists()
    code, err, out = call(monkeypatch, capsys, vi, *common, *suggested(line))
    assert code == 0 and err == [] and "done: 1 of 1 files" in out
    assert (tmp_path / "out" / "in ü=#'x.wav").is_file()


def test_evaluate_odd_path_is_one_line_and_its_quoting_runs_with_one_metric_name(monkeypatch, capsys, tmp_path):
    ref = tmp_path / "réf#1.wav"
    sf.write(ref, tone(), SR)
    gen = tmp_path / "gen.wav"
    sf.write(gen, tone() * 0.9, SR)
    common = [f"generated={gen}", f"output={tmp_path / 'eval'}", "metrics=mel_l1"]  # one name, no brackets
    code, err, _ = call(monkeypatch, capsys, ve, *common, f"reference={ref}")
    line = one_line(code, err, "vocoder.evaluate", "needs Hydra's quotes")
    code, err, out = call(monkeypatch, capsys, ve, *common, *suggested(line))
    assert code == 0 and err == [], err
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert list(summary["means"]) == ["mel_l1"] and summary["count"] == 1


def test_train_odd_data_root_is_one_line_and_its_quoting_reads_back(monkeypatch, capsys, tmp_path):
    root = tmp_path / "corpus\nnewline ü"
    code, err, _ = call(monkeypatch, capsys, vt, "+experiment=demo", f"data.root={root}", f"run_dir={tmp_path / 'r'}")
    line = one_line(code, err, "vocoder.train", "needs Hydra's quotes", "$'data.root=")
    (arg,) = suggested(line)
    vt.CLI.check_argv(["+experiment=demo", arg])  # passes
    (override,) = OverridesParser.create().parse_overrides([arg])
    assert override.value() == str(root)


def test_a_real_command_line_with_an_odd_path(tmp_path):
    env = child_env(OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "vocoder.infer", "checkpoint=x.pt", "input=ü.wav", "output=out"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.splitlines() == ["vocoder.infer: error: cannot read the argument input=ü.wav as it is: a value "
                                        "with non-ASCII letters, '=', '#', ',', quotes or a newline needs "
                                        "Hydra's quotes; write it as 'input=\"ü.wav\"'"]


@pytest.mark.parametrize("entry,args,expected", [
    (ve, ["metric=pesq", "output=o"], ["unknown argument 'metric'; did you mean metrics?", "arguments: reference"]),
    (ve, ["+colour=red", "output=o"], ["unknown argument 'colour'"]),
    (ve, ["reference=a", "generated=b"], ["set output=... (usage: python -m vocoder.evaluate"]),
    (ve, ["metrics=pesq,mcd", "output=o"], ["metrics=pesq,mcd is a sweep", "metrics=[a,b] for a list"]),
    (vi, ["ouput=x"], ["unknown argument 'ouput'; did you mean output?"]),
    (vi, ["checkpoint=c", "input=a,b.wav", "output=o"], ["input=a,b.wav is a sweep",
                                                           "'input=\"a,b.wav\"' for one value with a comma"]),
    (vt, ["+experiment=demo", "train.lerning_rate=1"], ["Could not override 'train.lerning_rate': no such key; "
                                                         "did you mean train.learning_rate?", "+train.lerning_rate=1"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) else getattr(v, "__name__", ""))
def test_argument_mistakes_are_one_line_exit_2(monkeypatch, capsys, entry, args, expected):
    code, err, out = call(monkeypatch, capsys, entry, *args)
    one_line(code, err, entry.__name__, *expected)
    assert out == ""
