"""The README and the docs are the product's front door: their commands and snippets run,
their links resolve, and CI runs the README's test command verbatim."""

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.+?)\n```", page.read_text(), re.S)


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_opens_with_setup_and_main_job_then_tests():
    main, tests = blocks(ROOT / "README.md", "bash")[:2]
    assert "pip install -q torch==2.13.0" in main and "python train.py" in main
    assert "pip install -q torch==2.13.0" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert blocks(ROOT / "README.md", "bash")[1] in ci


def test_readme_and_benchmarks_keep_to_their_size():
    assert (ROOT / "README.md").stat().st_size <= 12_000
    assert (ROOT / "docs" / "benchmarks.md").stat().st_size <= 25_000


def test_every_link_resolves():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith("http"):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            assert linked.exists(), f"{page.name} links to {target}, which does not exist"
            if anchor and linked.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.M)}
                assert anchor in anchors, f"{page.name} links to {target}: no such heading in {linked.name}"


def test_commands_name_only_files_a_clone_has():
    """A user's commands (benchmarks.md aside, which reproduces figures from tables the
    clone does not ship, and says so) read nothing outside the clone."""
    for page in PAGES:
        if page.name == "benchmarks.md":
            continue
        for block in blocks(page, "bash"):
            for word in shlex.split(block.replace("\\\n", " "), comments=True):
                for value in word.split("=", 1)[-1].split():
                    assert not value.startswith("../"), f"{page.name}: {value} is outside the clone"
                    if "/" in value and Path(value).suffix in {".py", ".json", ".yaml", ".csv", ".gz"}:
                        assert (ROOT / value).exists(), f"{page.name}: {value} is not in the clone"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The README's Python snippets, with the CartPole and model-space budgets cut to keep the suite fast."""
    monkeypatch.chdir(tmp_path)
    env_block, agent_block, model_block = blocks(ROOT / "README.md", "python")
    scope: dict = {}
    exec(env_block, scope)
    assert scope["reward"] == 0.84892 and scope["info"]["metrics"]["test_acc"] == 0.8903
    exec(agent_block.replace("env_steps=100_000", "env_steps=512"), scope)
    assert scope["agent"].env.env_steps == 512 and (tmp_path / "ppo_cartpole.pt").is_file()
    assert scope["agent"].config.n_steps == 32  # the cartpole preset, not SB3's 2048
    exec(model_block.replace("evaluations=20", "evaluations=2"), scope)
    assert len(scope["agent"].env.evaluations) == 2
    assert not any(isinstance(m, scope["rnn"].Repeat) for m in scope["net"].modules())


@pytest.mark.slow
def test_the_best_model_a_run_saved_loads_as_the_docs_say(tmp_path):
    """environments.md's two lines give back the trained network: same weights, same score."""
    import torch

    from rlnas.core.context import RunContext
    from rlnas.evaluators import ScratchEvaluator
    from rlnas.spaces import NB201Space

    def evaluator():
        return ScratchEvaluator(NB201Space(), epochs=1, channels=4, cells_per_stage=1,
                                run=RunContext(run_dir=tmp_path))

    scratch = evaluator()
    weak, strong = "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", \
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    first, second = scratch.evaluate(strong), scratch.evaluate(weak)
    assert first.score > second.score  # the file keeps the better network, not the last one

    scope: dict = {}
    exec(blocks(ROOT / "docs" / "environments.md", "python")[0].replace("RUN_DIR", str(tmp_path)), scope)
    model, saved = scope["model"], scope["saved"]
    assert isinstance(model, torch.nn.Module) and not model.training
    assert saved["arch"] == strong and saved["metrics"] == first.metrics
    with torch.no_grad():
        val = scratch.data.valid
        assert float((model(val.x).argmax(1) == val.y).float().mean()) == first.score

    evaluator().evaluate(weak)  # a resumed run: the file's own score is the bar
    assert torch.load(tmp_path / "best_model.pt", weights_only=True)["arch"] == strong


def test_the_trial_snippet_reads_its_parameters_and_reports_the_score(tmp_path, monkeypatch):
    """hpo.md's lines a user adds to a training script, run as the trial evaluator runs them."""
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("RLNAS_PARAMETERS", json.dumps({"lr": 0.01, "batch_size": 64}))
    monkeypatch.setenv("RLNAS_RESULT_FILE", str(results))
    scope = {"train_and_validate": lambda lr, batch_size: lr * batch_size}
    exec(blocks(ROOT / "docs" / "hpo.md", "python")[0], scope)
    assert scope["params"] == {"lr": 0.01, "batch_size": 64}
    assert json.loads(results.read_text()) == {"type": "final", "value": 0.64}


def test_the_plugin_example_runs_and_checks_its_setting():
    """plugins.md's agent, registered as its entry point would register it, searches."""
    from rlnas.cli.train import compose
    from rlnas.core.registry import AGENTS
    from rlnas.search.build import build
    from rlnas.search.runner import drive

    scope: dict = {}
    exec(blocks(ROOT / "docs" / "plugins.md", "python")[0], scope)
    AGENTS.register("eps_greedy", scope["EpsilonGreedyCells"])
    try:
        search = build(compose(["agent=eps_greedy", "agent.epsilon=0.2", "budget.evaluations=5", "quiet=true"]))
        drive(search)
        assert len(search.monitor.evaluations) == 5 and set(search.agent.state_dict()) == {"rng", "best"}
        with pytest.raises(ValueError, match=r"eps_greedy: epsilon=2 must be a number in \[0, 1\]"):
            build(compose(["agent=eps_greedy", "agent.epsilon=2"]))
    finally:
        del AGENTS._classes["eps_greedy"]


def test_the_python_entry_to_a_run_works(tmp_path, monkeypatch):
    """configuration.md's three lines run a search from Python."""
    monkeypatch.chdir(tmp_path)
    block = blocks(ROOT / "docs" / "configuration.md", "python")[0]
    scope: dict = {}
    exec(block.replace('"budget.evaluations=50"', '"budget.evaluations=5", "quiet=true"'), scope)
    assert scope["report"]["evaluations"] == 5 and (tmp_path / "runs" / "planner" / "report.json").is_file()
