"""The package's shape: no import cycles through the Python API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names (at any level of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_that_the_api_imports_imports_it_back():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, anomaly_toolbox.detector; print('\\n'.join("
         "f'{n} {m.__file__}' for n, m in sys.modules.items() if n.startswith('anomaly_toolbox')))"],
        capture_output=True, text=True, check=True).stdout.split()
    modules = dict(zip(loaded[::2], loaded[1::2]))
    assert "anomaly_toolbox.experiments.runner" not in modules  # the CLI's glue stays out
    importing_back = [name for name, file in modules.items() if name != "anomaly_toolbox.detector"
                      and "anomaly_toolbox.detector" in imported_modules(Path(file))]
    assert importing_back == []
