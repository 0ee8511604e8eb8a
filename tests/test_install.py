"""The installed package, as a user gets it from a wheel: one namespace, configs inside it,
and the console script running from a directory that knows nothing of the checkout."""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding only the rlnas wheel; its dependencies are read from this test
    venv through a path line (a .pth entry, so no network and no second torch)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy of the sources: setuptools' build/ folder in a checkout can hold
    # modules since deleted, which would then pass here and not for a user
    source = shutil.copytree(ROOT, tmp / "src", ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "outputs", "multirun", "runs", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("rlnas-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    before = {p.name for p in purelib.iterdir()}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    added = {p.name for p in purelib.iterdir()} - before
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv, python, purelib, added


def test_site_packages_gains_only_rlnas(installed):
    _, _, purelib, added = installed
    assert {name for name in added if not name.endswith(".dist-info")} == {"rlnas"}
    for name in ("agents", "envs", "world_models", "conf"):
        assert (purelib / "rlnas" / name / "__init__.py").is_file(), name
    assert (purelib / "rlnas" / "conf" / "config.yaml").is_file()
    for name in ("core", "spaces", "networks", "data", "execution", "evaluators", "search", "cli"):
        assert (purelib / "rlnas" / name / "__init__.py").is_file(), name
    assert (purelib / "rlnas" / "nni_stand_in" / "nni" / "utils.py").is_file()  # a trial's `import nni`


@pytest.mark.slow
def test_console_script_runs_from_an_empty_directory(installed, tmp_path):
    venv, *_ = installed
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([str(venv / "bin" / "rlnas-train"), "agent=random", "budget.evaluations=5",
                           "hydra.run.dir=run"], cwd=empty, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((empty / "run" / "report.json").read_text())
    assert report["evaluations"] == 5 and report["agent"] == "random"
    assert "best arch" in proc.stdout and "5/5" in proc.stderr  # the summary and the progress bar


def test_installed_modules_come_from_the_wheel_and_gymnasium_imports_them(installed, tmp_path):
    _, python, purelib, _ = installed
    script = """
import gymnasium as gym
env = gym.make("rlnas:rlnas/NB201-v0")  # the module prefix imports rlnas, which registers the env
obs, info = env.reset(seed=0)
for action in (3, 3, 3, 1, 2, 3):
    obs, reward, terminated, truncated, info = env.step(action)
import rlnas, rlnas.agents, rlnas.envs, rlnas.world_models
from rlnas.agents import make_agent
print(reward, terminated, *(m.__file__ for m in (rlnas, rlnas.agents, rlnas.envs, rlnas.world_models)))
"""
    proc = subprocess.run([str(python), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reward, terminated, *files = proc.stdout.split()
    assert float(reward) == pytest.approx(0.84892) and terminated == "True"
    assert all(Path(f).is_relative_to(purelib / "rlnas") for f in files), files


def test_every_extra_the_project_names_exists():
    """``pip install 'rlnas[...]'`` wherever it is written must work (the supernet evaluator's
    config once named an extra ``cifar`` that was never declared)."""
    import re
    from importlib.metadata import metadata

    extras = set(metadata("rlnas").get_all("Provides-Extra"))
    named = {}
    for path in ROOT.rglob("*"):
        if path.suffix in (".py", ".md", ".yaml", ".toml") and ".venv" not in path.parts and path.is_file():
            for extra in re.findall(r"rlnas\[(\w+)\]", path.read_text(errors="ignore")):
                named.setdefault(extra, path)
    assert named and set(named) <= extras, {e: str(p) for e, p in named.items() if e not in extras}
