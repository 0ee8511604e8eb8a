"""The layers of the code, checked by import-linter's contracts (pyproject.toml) on the
package as it installs: agents/, envs/ and world_models/ inside rlnas/, where its import
graph sees them (an editable install maps them there, out of grimp's sight)."""

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def installed_layout(stage: Path) -> Path:
    """A copy of the package laid out as pyproject.toml's package-dir installs it."""
    mapping = read_configuration(ROOT / "pyproject.toml")["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items()):
        shutil.copytree(ROOT / folder, stage / package.replace(".", "/"),
                        ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return stage


def lint_imports(stage: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), str(ROOT / "pyproject.toml")], cwd=stage, capture_output=True,
                          text=True, env={"PYTHONPATH": str(stage), "PATH": str(LINT_IMPORTS.parent)})


def test_every_layer_imports_only_the_layers_below_it(tmp_path):
    proc = lint_imports(installed_layout(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken" in proc.stdout


def test_a_lower_layer_that_imports_a_higher_one_is_caught(tmp_path):
    stage = installed_layout(tmp_path)
    with (stage / "rlnas" / "spaces" / "base.py").open("a") as module:
        module.write("\nfrom rlnas.search import runner  # noqa\n")
    proc = lint_imports(stage)
    assert proc.returncode != 0 and "rlnas.spaces is not allowed to import rlnas.search" in proc.stdout
