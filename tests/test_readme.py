"""The README's two commands are the product's front door; CI must run the second verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_setup_and_main_job_then_tests():
    main, tests = readme_commands()[:2]
    assert "pip install -q torch==2.13.0" in main and "python train.py" in main
    assert "pip install -q torch==2.13.0" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The README's Python snippets, with the CartPole budget cut to keep the suite fast."""
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 2
    scope: dict = {}
    exec(blocks[0], scope)
    assert scope["reward"] == 0.84892 and scope["info"]["metrics"]["test_acc"] == 0.8903
    exec(blocks[1].replace("env_steps=100_000", "env_steps=512"), scope)
    assert scope["agent"].env.env_steps == 512 and (tmp_path / "ppo_cartpole.pt").is_file()
