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
    assert len(blocks) == 4
    scope: dict = {}
    exec(blocks[0], scope)
    assert scope["reward"] == 0.84892 and scope["info"]["metrics"]["test_acc"] == 0.8903
    exec(blocks[1].replace("env_steps=100_000", "env_steps=512"), scope)
    assert scope["agent"].env.env_steps == 512 and (tmp_path / "ppo_cartpole.pt").is_file()


def test_readme_loads_the_best_model_a_run_saved(tmp_path):
    """The README's two lines give back the trained network: same weights, same score."""
    import torch

    from rlnas.evaluators import ScratchEvaluator
    from rlnas.spaces import NB201Space

    evaluator = ScratchEvaluator(NB201Space(), epochs=1, channels=4, cells_per_stage=1)
    evaluator.keep_best_model(tmp_path / "best_model.pt")
    weak, strong = "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", \
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    first, second = evaluator.evaluate(strong), evaluator.evaluate(weak)
    assert first.score > second.score  # the file keeps the better network, not the last one

    block = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)[2]
    scope: dict = {}
    exec(block.replace("RUN_DIR", str(tmp_path)), scope)
    model, saved = scope["model"], scope["saved"]
    assert isinstance(model, torch.nn.Module) and not model.training
    assert saved["arch"] == strong and saved["metrics"] == first.metrics
    with torch.no_grad():
        val = evaluator.data.valid
        accuracy = float((model(val.x).argmax(1) == val.y).float().mean())
    assert accuracy == first.score

    resumed = ScratchEvaluator(NB201Space(), epochs=1, channels=4, cells_per_stage=1)
    resumed.keep_best_model(tmp_path / "best_model.pt")  # a resumed run: the file's score is the bar
    resumed.evaluate(weak)
    assert torch.load(tmp_path / "best_model.pt", weights_only=True)["arch"] == strong


def test_readme_trial_snippet_reads_its_parameters_and_reports_the_score(tmp_path, monkeypatch):
    """The three lines a user adds to a training script, run as the trial evaluator runs them."""
    import json

    block = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)[3]
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("RLNAS_PARAMETERS", json.dumps({"lr": 0.01, "batch_size": 64}))
    monkeypatch.setenv("RLNAS_RESULT_FILE", str(results))
    scope = {"train_and_validate": lambda lr, batch_size: lr * batch_size}
    exec(block, scope)
    assert scope["params"] == {"lr": 0.01, "batch_size": 64}
    assert json.loads(results.read_text()) == {"type": "final", "value": 0.64}
