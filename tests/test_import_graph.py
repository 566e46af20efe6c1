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


def package_imports() -> dict[str, set[str]]:
    """{module: the vocoder modules it imports}, at module level or inside functions."""
    import ast

    package = ROOT / "vocoder"
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = here.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module or ""
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in paths]
                found |= set(subs) | ({base} if len(subs) < len(node.names) and base in paths else set())
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in paths}
        graph[name] = found - {name}
    return graph


def test_no_two_modules_import_each_other_even_lazily():
    graph = package_imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in graph[start])
    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert not circles, f"modules on an import circle: {circles}"


def test_the_lower_floors_import_nothing_above_them():
    lower = ("vocoder.kernels", "vocoder.layers", "vocoder.models", "vocoder.audio", "vocoder.data",
             "vocoder.evaluation")
    upper = ("vocoder.vocoder", "vocoder.streaming", "vocoder.training", "vocoder.train", "vocoder.infer",
             "vocoder.evaluate", "vocoder.export", "vocoder.bench")
    wrong = sorted(f"{m} -> {t}" for m, targets in package_imports().items() if m.startswith(lower)
                   for t in targets if t.startswith(upper) or (m.startswith(("vocoder.data", "vocoder.audio"))
                                                              and t.startswith("vocoder.evaluation")))
    assert not wrong, wrong
