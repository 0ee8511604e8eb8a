"""Searching the user's own model on the user's own data, through train.py: every agent on
the CNN example, the built-in recipe and its kept model, bad input refused, and a SIGKILL."""

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rlnas import nn as rnn
from rlnas.cli.train import compose
from rlnas.core.registry import AGENTS
from rlnas.nn.space import load_factory
from rlnas.search.runner import load_run_config, run
from tests.test_datasets import png_tree
from tests.test_train import kill_midway, stored_archs

ROOT = Path(__file__).resolve().parents[1]
CNN = ["env=model", "env.space=examples/cnn_space.py:Net", "evaluator=train", "quiet=true"]
UNTRAINED = [*CNN, "evaluator.fn=tests.objectives:untrained_accuracy"]
ONE_SHOT = ("darts", "gdas", "snas")  # they search through a supernet evaluator
SLOW_AGENTS = ("a2c", "dqn", "dreamer_v1", "dreamer_v2", "rainbow", "reinforce", "tpe")  # the fast tier: one of a kind


@pytest.mark.parametrize("agent", [pytest.param(a, marks=pytest.mark.slow) if a in SLOW_AGENTS else a
                                   for a in AGENTS.available() if a not in ONE_SHOT])
def test_every_agent_searches_the_cnn_example_through_train_py(tmp_path, agent):
    run(compose([f"agent={agent}", *UNTRAINED, "budget.evaluations=10"]), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    archs = stored_archs(tmp_path)
    assert report["evaluations"] == 10 == len(set(archs))
    space = rnn.ModelSpace("examples/cnn_space.py:Net")
    assert all(space.to_string(space.from_string(a)) == a for a in archs)
    assert report["best_parameters"]["arch"] == json.loads(report["best_arch"])


@pytest.mark.slow
def test_the_built_in_recipe_trains_and_keeps_the_best_network_as_its_plain_module(tmp_path):
    run(compose(["agent=random", *CNN, "evaluator.epochs=1", "budget.evaluations=2"]), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["best_metrics"]["test_acc"] > 0.3  # chance is 0.1: it learned
    assert {"val_acc", "test_acc", "params", "flops"} <= set(report["best_metrics"])
    kept = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert kept["arch"] == json.loads(report["best_arch"])  # the dict
    network = rnn.fixed_arch(load_factory("examples/cnn_space.py:Net"), kept["arch"], in_channels=1, num_classes=10)
    network.load_state_dict(kept["state_dict"])
    assert sum(p.numel() for p in network.parameters()) == report["best_metrics"]["params"]


def test_a_training_function_that_returns_no_number_fails_its_evaluation_by_name(tmp_path):
    run(compose(["agent=random", *CNN, "evaluator.fn=tests.objectives:no_number", "budget.evaluations=2"]), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failed"] == 2
    assert "training function tests.objectives:no_number's result is 'high', not a finite number" \
        in report["first_failure"]


@pytest.mark.parametrize(("dataset", "make", "message"), [
    (["dataset=folder", "dataset.path={tmp}/nope"], None, "nope/train does not exist"),
    (["dataset=npz", "dataset.path={tmp}/nope.npz"], None, "nope.npz does not exist"),
    (["dataset=folder", "dataset.path={tmp}"], lambda tmp: png_tree(tmp, lambda split, label, i: (6, 6 + (i == 3))),
     "images of mixed sizes"),
    (["dataset=npz", "dataset.path={tmp}/d.npz", "dataset.num_classes=3"],
     lambda tmp: np.savez(tmp / "d.npz", x=np.zeros((9, 1, 4, 4)), y=np.arange(9) % 4), "label 3 is outside 0..2"),
    (["dataset=python", "dataset.fn=examples.mlp_space:nope"], None, "cannot import dataset function"),
    (["env.space=examples/nope.py:Net"], None, "no such file examples/nope.py"),
])
def test_bad_data_or_space_is_refused_by_name_before_anything_is_trained(tmp_path, dataset, make, message):
    if make:
        make(tmp_path)
    args = [*CNN, "agent=random", *(a.format(tmp=tmp_path) for a in dataset)]
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run(compose(args), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_sigkill_then_resume_of_a_model_space_search_loses_and_repeats_nothing(tmp_path):
    args = ["agent=planner", *CNN, "evaluator.fn=tests.objectives:slow_untrained_accuracy", "budget.evaluations=40",
            "checkpoint_every=5"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    before = kill_midway(args, killed, at_least=15, budget=40)
    run(load_run_config(killed), killed, resume=True)
    after = stored_archs(killed)
    assert after[:len(before)] == before and len(after) == 40 == len(set(after))
    run(compose(args), whole)
    assert stored_archs(whole) == after


TRIAL = """
import sys

from rlnas import trial
from rlnas.nn import fixed_arch, load_factory

arch = trial.get_next_parameter()["arch"]  # {label: choice}
net = fixed_arch(load_factory(sys.argv[1]), arch)
trial.report_final_result(sum(p.numel() for p in net.parameters()) / 1e5)
"""


@pytest.mark.slow
def test_a_trial_script_gets_the_architecture_as_a_dict_and_builds_it_with_fixed_arch(tmp_path):
    script, space = tmp_path / "trial.py", f"{ROOT / 'examples' / 'cnn_space.py'}:Net"
    script.write_text(TRIAL)
    report = run(compose(["agent=random", "env=model", f"env.space={space}", "evaluator=trial",
                          f"evaluator.command={sys.executable} {script} {space}", "budget.evaluations=2",
                          "quiet=true"]), tmp_path / "run")
    assert report["evaluations"] == 2 and "failed" not in report
    factory = load_factory(space)
    with sqlite3.connect(tmp_path / "run" / "evaluations.sqlite") as db:
        for arch, score in db.execute("SELECT arch, score FROM evaluations"):
            assert score == pytest.approx(sum(p.numel() for p in rnn.fixed_arch(factory, arch).parameters()) / 1e5)


@pytest.mark.slow
def test_a_supernet_over_the_users_model_scores_paths_and_retrains_the_best(tmp_path):
    run(compose(["agent=random", "env=model", "env.space=examples/cnn_space.py:Net", "evaluator=supernet",
                 "evaluator.retrain.top_k=1", "evaluator.retrain.epochs=1", "budget.evaluations=6", "quiet=true"]),
        tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["evaluations"] == 6 and "failed" not in report
    assert "supernet_acc" in report["best_metrics"]
    assert report["final"][0]["arch"] == report["best_arch"] and report["final"][0]["test_acc"] > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("agent", ONE_SHOT)
def test_darts_gdas_and_snas_relax_the_users_model_and_derive_an_architecture(tmp_path, agent):
    run(compose([f"agent={agent}", "env=model", "env.space=examples/cnn_space.py:Net", "evaluator=supernet",
                 "agent.epochs=2", "evaluator.retrain.top_k=0", "quiet=true"]), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    space = rnn.ModelSpace("examples/cnn_space.py:Net")
    derived = report["search"]["derived"]
    assert report["evaluations"] == 1 and report["best_arch"] == derived == space.to_string(space.from_string(derived))
    assert [h["epoch"] for h in report["search"]["history"]] == [1, 2]


@pytest.mark.slow
def test_train_py_exits_2_naming_a_bad_model_space_before_any_training():
    from tests.test_train import train

    proc = train("env=model", "env.space=examples/cnn_space.py:Nope", "evaluator=train", check=False)
    assert proc.returncode == 2
    assert "model space 'examples/cnn_space.py:Nope': examples/cnn_space.py has no class or function 'Nope'" \
        in proc.stderr
