"""train.py end to end, as a user runs it: subprocesses on the real command line."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from rlnas.cli.train import compose
from rlnas.search.runner import load_run_config, run
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


def train(*args, env=None, check=True, timeout=300):
    if not any(a.startswith(("hydra.run.dir=", "resume=")) for a in args):  # runs go to a temporary folder,
        args = (*args, f"hydra.run.dir={tempfile.mkdtemp(prefix='rlnas-test-')}")  # never the clone's outputs/
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def stored_archs(run_dir):
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        return [row[0] for row in db.execute("SELECT arch FROM evaluations ORDER BY seq")]


@pytest.mark.slow
def test_main_command_report_summary_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = train("agent=reinforce", "env=nb201", "budget.evaluations=60", f"hydra.run.dir={tmp_path}")
    assert "best arch" in proc.stdout and "tensorboard --logdir" in proc.stdout
    assert "60/60" in proc.stderr  # the progress bar reached the budget
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("agent", "env", "evaluator", "seed", "evaluations", "env_steps", "wall_seconds",
                "best_arch", "best_search_score", "best_test_score"):
        assert key in report
    assert report["evaluations"] == 60 == len(set(stored_archs(tmp_path)))
    assert report["agent"] == "reinforce" and 0.5 < report["best_search_score"] < 1.0
    assert 0.5 < report["best_test_score"] < 1.0

    assert report["best_cell"] == str(tmp_path / "best_cell.png") and (tmp_path / "best_cell.svg").is_file()
    assert "best cell" in proc.stdout and report["best_model"] is None  # a table trains no network
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0, "scalars": 0, "images": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in ("episode/return", "search/best_score", "search/best_score_vs_wall_ms",
                "search/distinct_architectures", "reinforce/loss", "reinforce/entropy",
                "reinforce/learning_rate"):
        assert tag in scalars, tag
    best_curve = [e.value for e in events.Scalars("search/best_score")]
    assert len(best_curve) == 60 and best_curve == sorted(best_curve)
    assert best_curve[-1] == pytest.approx(report["best_search_score"])
    texts = events.Tensors("search/best_arch/text_summary")
    assert texts[-1].tensor_proto.string_val[0].decode() == report["best_arch"]
    (image,) = events.Images("search/best_cell")
    assert image.step == 60 and image.encoded_image_string.startswith(b"\x89PNG") and image.width > 400

    # The front of (validation accuracy, parameters) over the 60 cells: every 25 and at the end.
    with sqlite3.connect(tmp_path / "evaluations.sqlite") as db:
        rows = [(score, json.loads(metrics)["params"])
                for score, metrics in db.execute("SELECT score, metrics FROM evaluations")]
    front = {(p["score"], p["params"]) for p in report["pareto"]["front"]}
    assert front and front <= set(rows)
    assert not any(s >= fs and c <= fc and (s, c) != (fs, fc) for s, c in rows for fs, fc in front)
    assert all(any(s <= fs and c >= fc for fs, fc in front) for s, c in rows)  # the rest is dominated
    assert report["pareto"]["reference"] == [0.0, max(c for _, c in rows)] and report["pareto"]["hypervolume"] > 0
    assert [i.step for i in events.Images("search/pareto_front")] == [25, 50, 60]


@pytest.mark.slow
def test_pareto_options_cost_reference_and_none(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = train("agent=random", "budget.evaluations=20", "pareto.cost=flops", "pareto.reference=[0.5,2.5e8]",
                 "pareto.every=10", f"hydra.run.dir={tmp_path / 'flops'}")
    report = json.loads((tmp_path / "flops" / "report.json").read_text())
    assert report["pareto"]["cost"] == "flops" and report["pareto"]["reference"] == [0.5, 2.5e8]
    assert "pareto front" in proc.stdout and (tmp_path / "flops" / "pareto_front.png").is_file()
    events = EventAccumulator(str(tmp_path / "flops" / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    curve = events.Scalars("search/hypervolume")
    assert [e.step for e in curve] == [10, 20] and curve[-1].value == pytest.approx(report["pareto"]["hypervolume"])

    train("agent=random", "budget.evaluations=5", "pareto.cost=null", f"hydra.run.dir={tmp_path / 'none'}")
    report = json.loads((tmp_path / "none" / "report.json").read_text())
    assert "pareto" not in report and not (tmp_path / "none" / "pareto_front.png").exists()


def test_unknown_agent_lists_the_available_ones():
    with pytest.raises(MissingConfigException) as refused:
        compose(["agent=nonexistent"])
    for name in ("evolution", "random", "reinforce"):
        assert f"\t{name}\n" in str(refused.value)


@pytest.mark.parametrize("args, message", [
    (["budget.evaluations=-5"], "budget: evaluations=-5 must be an integer >= 1, or null (no limit)"),
    (["budget.evaluations=20000"], "exceeds the 15625 distinct architectures"),
    (["env=nasnet", "evaluator=scratch", "env.ops=[identity,conv_9x9]"], "unknown op(s) ['conv_9x9']"),
    (["env=nasnet", "evaluator=scratch", "evaluator.channels=0"],
     "scratch evaluator: channels=0 must be an integer >= 1"),
    (["env=nasnet"], "tabular evaluator scores NAS-Bench-201 cells only"),
    (["evaluator.table=/no/such/table.csv"], "/no/such/table.csv not found"),
    (["agent=evolution", "agent.sample_size=50"], "sample_size=50 must be an integer in [1, population_size = 10]"),
    (["agent=dreamer_v2", "agent.horizon=0"], "dreamer_v2: horizon=0 must be an integer >= 1"),
    (["seed=-1"], "config: seed=-1 must be an integer >= 0"),
    (["threads=0"], "config: threads=0 must be an integer >= 1, or null"),
])
def test_impossible_values_fail_before_any_work(tmp_path, args, message):
    """In process, for speed: the composed config ``train.py ARGS`` runs, refused as it is built."""
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as refused:
        run(compose([*args, "quiet=true"]), tmp_path)
    assert message in str(refused.value)
    assert not (tmp_path / "evaluations.sqlite").exists()


def test_a_refused_value_exits_2_with_its_message(tmp_path):
    proc = train("agent=dreamer_v2", "agent.horizon=0", "quiet=true", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "rlnas: error: dreamer_v2: horizon=0 must be an integer >= 1" in proc.stderr
    assert not (tmp_path / "evaluations.sqlite").exists()


@pytest.mark.slow
def test_multirun(tmp_path):
    train("--multirun", "agent=random,evolution", "seed=0,1", "budget.evaluations=15", "quiet=true",
          f"hydra.sweep.dir={tmp_path}")
    reports = [json.loads(p.read_text()) for p in tmp_path.glob("*/report.json")]
    assert sorted((r["agent"], r["seed"]) for r in reports) == [
        ("evolution", 0), ("evolution", 1), ("random", 0), ("random", 1)]
    assert all(r["evaluations"] == 15 for r in reports)


def kill_midway(args, run_dir, at_least, budget):
    """Start train.py, SIGKILL it once it has checkpointed and stored ``at_least``
    evaluations, and return the stored architectures."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: (run_dir / "checkpoint.pt").exists() and len(stored_archs(run_dir)) >= at_least, 120,
               f"a checkpoint and {at_least} evaluations stored")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored_archs(run_dir)
    assert at_least <= len(before) < budget, "the run should have been killed midway"
    return before


SLOW = ["env=nb201", "evaluator=function", "evaluator.fn=tests.objectives:slow_table_score",
        "budget.evaluations=60", "checkpoint_every=5", "quiet=true"]


QUICKER = {"dreamer_v1": ["agent.train_every=6"], "dreamer_v2": ["agent.updates_per_evaluation=1"]}  # CI's minutes


@pytest.mark.parametrize("agent", ["evolution", "local_search", "tpe", "planner", "reinforce", "ppo", "a2c", "dqn",
                                   "rainbow", "dreamer_v1", "dreamer_v2"])
@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, agent):
    args = [f"agent={agent}", *QUICKER.get(agent, []), *SLOW]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    before = kill_midway(args, killed, at_least=25, budget=60)

    run(load_run_config(killed), killed, resume=True)  # as train.py resume=KILLED does, in process for speed
    after = stored_archs(killed)
    assert after[: len(before)] == before  # the store is intact
    assert len(after) == 60 == len(set(after))  # budget reached, nothing evaluated twice
    report = json.loads((killed / "report.json").read_text())
    assert report["evaluations"] == 60

    # and the resumed search is the very search an uninterrupted run makes
    run(compose(args), whole)
    assert stored_archs(whole) == after


def test_resume_of_a_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.yaml"):
        load_run_config(tmp_path / "nope")


PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "rlnas-first-choice"
        version = "0.1"

        [project.entry-points."rlnas.agents"]
        first_choice = "first_choice:FirstChoice"
    """,
    "first_choice.py": """
        from dataclasses import dataclass

        from rlnas.agents import AgentConfig
        from rlnas.agents.architecture_agent import ArchitectureAgent
        from rlnas.core.settings import INT_AT_LEAST_0, setting


        @dataclass
        class FirstChoiceConfig(AgentConfig):
            offset: int = setting(1, "the choice of every decision but the first", INT_AT_LEAST_0)


        class FirstChoice(ArchitectureAgent):
            '''Always the first legal choice, then walk op by op through the first edge.'''

            Config = FirstChoiceConfig

            def learn(self, budget, callback=None):
                for k in range(self.space.max_choices):
                    if not self.env.within(budget):
                        break
                    self.play((k,) + (self.config.offset,) * (self.space.num_decisions - 1))
                return self
    """,
}


@pytest.mark.slow
def test_plugin_agent_installed_from_another_package(tmp_path):
    source, site = tmp_path / "plugin", tmp_path / "site"
    source.mkdir()
    for name, text in PLUGIN.items():
        (source / name).write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True)
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    run_dir = tmp_path / "run"
    train("agent=first_choice", "agent.offset=3", "budget.evaluations=3", "quiet=true",
          f"hydra.run.dir={run_dir}", env=env)
    assert stored_archs(run_dir) == [
        f"|{op}~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        for op in ("none", "skip_connect", "nor_conv_1x1")]
    # it overrides learn() and proposes nothing: a parallel run has no way to drive it
    proc = train("agent=first_choice", "parallel=2", "budget.evaluations=3", "quiet=true", check=False, env=env)
    assert proc.returncode != 0 and "agent 'first_choice' does neither: use parallel=1" in proc.stderr


@pytest.mark.slow
def test_user_table_by_path(tmp_path):
    import gzip
    from importlib import resources

    raw = gzip.decompress(resources.files("rlnas.data").joinpath("nb201_cifar10_12ep.csv.gz").read_bytes())
    lines = raw.decode().splitlines()
    # the same cells, every validation accuracy 50 % and every test accuracy 60 %
    path = tmp_path / "mine.csv"
    path.write_text("\n".join([lines[0]] + [",".join(ln.split(",")[:2]) + ",50.0,60.0" for ln in lines[1:]]))
    train("agent=evolution", f"evaluator.table={path}", "budget.evaluations=20", "quiet=true",
          f"hydra.run.dir={tmp_path / 'run'}")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["best_search_score"] == pytest.approx(0.5) and report["best_test_score"] == pytest.approx(0.6)
    with sqlite3.connect(tmp_path / "run" / "evaluations.sqlite") as db:
        assert {row[0] for row in db.execute("SELECT score FROM evaluations")} == {0.5}


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["evolution", "ppo"])  # PPO steps the env under torch.no_grad()
def test_nasnet_with_the_scratch_evaluator(tmp_path, agent):
    train(f"agent={agent}", "env=nasnet", "evaluator=scratch", "evaluator.epochs=1", "budget.evaluations=2",
          "quiet=true", f"hydra.run.dir={tmp_path}")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["evaluations"] == 2 and report["best_arch"].startswith("normal=")
    # Which cells the agent picks differs between machines, and so does a one-epoch score;
    # what a score means is tested on fixed cells in test_evaluators.py.
    assert 0.0 <= report["best_test_score"] <= 1.0 and report["best_metrics"]["params"] > 0
    saved = torch.load(report["best_model"], weights_only=True)
    assert saved["arch"] == report["best_arch"] and saved["metrics"] == report["best_metrics"]
    assert (tmp_path / "best_cell.png").is_file() and (tmp_path / "best_cell.svg").is_file()


@pytest.mark.parametrize("env_args", [
    ["env=nb201", "budget.evaluations=20"],
    ["env=nasnet", "evaluator=function", "evaluator.fn=tests.objectives:nasnet_sep_conv_share",
     "budget.evaluations=3"],
])
@pytest.mark.slow
def test_model_free_agents_and_peers_through_train_py(tmp_path, env_args):
    train("--multirun", "agent=ppo,a2c,dqn,rainbow,local_search,tpe,planner", *env_args, "quiet=true",
          f"hydra.sweep.dir={tmp_path}")
    reports = {r["agent"]: r for r in (json.loads(p.read_text()) for p in tmp_path.glob("*/report.json"))}
    assert sorted(reports) == ["a2c", "dqn", "local_search", "planner", "ppo", "rainbow", "tpe"]
    budget = int(env_args[-1].split("=")[1])
    assert all(r["evaluations"] == budget and r["best_arch"] for r in reports.values())


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume(tmp_path):
    # A suite started in the background inherits SIGINT ignored; give train.py a terminal's default.
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "agent=evolution", *SLOW,
                             f"hydra.run.dir={tmp_path}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until((tmp_path / "checkpoint.pt").exists, 60, "the first checkpoint")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and f"python train.py resume={tmp_path}" in err
    train(f"resume={tmp_path}", "quiet=true")
    assert len(set(stored_archs(tmp_path))) == 60


SUPERNET = ["agent=reinforce", "env=nb201", "evaluator=supernet", "evaluator.train_steps=2",
            "evaluator.retrain.top_k=2", "evaluator.retrain.epochs=1", "quiet=true"]


def stored_rows(run_dir):
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        return [(arch, evaluator, json.loads(metrics)) for arch, evaluator, metrics in
                db.execute("SELECT arch, evaluator, metrics FROM evaluations ORDER BY seq")]


@pytest.mark.slow
def test_supernet_search_then_stand_alone_retrain(tmp_path):
    """On the process backend; the Ray pool's scores are tested against one process in
    test_supernet.py, and a train.py run on Ray in test_parallel.py and test_trial.py."""
    train(*SUPERNET, "budget.evaluations=12", "backend=process", f"hydra.run.dir={tmp_path}")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["evaluations"] == 12 and len(report["final"]) == 2
    headline = max(report["final"], key=lambda r: r["val_acc"])
    assert report["best_test_score"] == headline["test_acc"] and report["best_arch"] == headline["arch"]
    saved = torch.load(tmp_path / "best_model.pt", weights_only=True)  # the retrain owns it
    assert saved["arch"] == headline["arch"] and saved["metrics"]["test_acc"] == headline["test_acc"]
    search = [m for _, evaluator, m in stored_rows(tmp_path) if evaluator.startswith("supernet:")]
    versions = [m["weight_version"] for m in search]
    assert versions == list(range(versions[0], versions[0] + 24, 2))  # 2 steps per evaluation, after warm-up
    assert (tmp_path / "supernet.pt").is_file()


@pytest.mark.slow
def test_supernet_run_killed_then_resumed_loses_nothing(tmp_path):
    args = [*SUPERNET, "budget.evaluations=40", "evaluator.retrain.top_k=0", "checkpoint_every=3"]
    before = kill_midway(args, tmp_path, at_least=15, budget=40)
    train(f"resume={tmp_path}", "quiet=true")
    after = stored_archs(tmp_path)
    assert after[: len(before)] == before and len(after) == 40 == len(set(after))
    versions = [m["weight_version"] for *_, m in stored_rows(tmp_path)]
    # The resumed worker continued from the supernet checkpoint, not from fresh weights.
    assert versions == sorted(versions) and versions[len(before)] > versions[len(before) - 1]
