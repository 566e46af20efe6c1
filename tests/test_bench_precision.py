"""`python -m vocoder.bench precision`: per precision, SNR against fp32 and M-STFT/PESQ against the
recordings, for a trained checkpoint (the shipped demo model on a short clip here); PESQ skipped with a
note where `pesq` is not installed; a checkpoint that does not load is one line, exit status 2."""

import json
import sys

import pytest

from vocoder.bench.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")
SHORT = ["--device", "cpu", "--clips", "1", "--seconds", "0.6"]


def rows_of(tmp_path, capsys, *args: str) -> tuple[str, list[dict]]:
    main(["precision", "--out", str(tmp_path), *SHORT, *args])
    return capsys.readouterr().out, json.loads((tmp_path / "precision.json").read_text())["rows"]


def test_cpu_rows_for_the_demo_model(tmp_path, capsys):
    text, rows = rows_of(tmp_path, capsys)
    assert "precision: device cpu" in text and "the first 1 held-out demo clips" in text
    assert [(r["model"], r["precision"]) for r in rows] == [("demo_pretrained.pt", p) for p in ("fp32", "bf16")]
    fp32, bf16 = rows
    assert fp32["snr_db_vs_fp32"] == float("inf") and fp32["max_abs_diff"] == 0
    assert bf16["snr_db_vs_fp32"] < 80 and bf16["max_abs_diff"] > 0  # bf16 changes the audio, a little
    assert all(r["m_stft"] > 0 and 1.0 <= r["pesq"] <= 4.64 for r in rows)


def test_without_pesq_the_column_is_empty_and_the_report_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pesq", None)  # `import pesq` raises ImportError
    text, rows = rows_of(tmp_path, capsys, "--precisions", "fp32")
    assert "the `pesq` package is not installed here" in text
    assert rows[0]["pesq"] is None and rows[0]["m_stft"] > 0


def test_a_checkpoint_that_does_not_load_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["precision", "--out", str(tmp_path), *SHORT, "--checkpoints", str(tmp_path / "nope.pt")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "nope.pt does not exist" in err and "Traceback" not in err
