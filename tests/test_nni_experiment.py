"""NNI experiment configs (rlnas/cli/nni.py): v2 and v1 keys read alike, every key
either carried over, reported or refused by name, and a config run end to end."""

import json
import sqlite3
import subprocess
import sys

import pytest
import yaml

from rlnas.cli.nni import command
from tests.test_parallel import report_of
from tests.test_train import ROOT

SPACE = {"x": {"_type": "quniform", "_value": [0, 1, 0.25]}}
V2 = {"experimentName": "demo", "searchSpaceFile": "space.json", "trialCommand": "python trial_script.py --tag 'a b'",
      "trialCodeDirectory": "code", "trialConcurrency": 2, "maxTrialNumber": 6, "maxTrialDuration": "1.5m",
      "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "minimize", "seed": 3}},
      "assessor": {"name": "Medianstop", "classArgs": {"optimize_mode": "minimize", "start_step": 2}},
      "trainingService": {"platform": "local"}}
V1 = {"authorName": "me", "searchSpacePath": "space.json", "trialConcurrency": 2, "maxTrialNum": 6,
      "trainingServicePlatform": "local", "trial": {"command": "python trial_script.py --tag 'a b'", "codeDir": "code"},
      "maxTrialDuration": 90,
      "tuner": {"builtinTunerName": "TPE", "classArgs": {"optimize_mode": "minimize", "seed": 3}},
      "assessor": {"builtinAssessorName": "Medianstop", "classArgs": {"optimize_mode": "minimize", "start_step": 2}}}


def experiment(tmp_path, config, name="config.yml"):
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "trial_script.py").write_text((ROOT / "tests" / "trial_script.py").read_text())
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    (tmp_path / name).write_text(yaml.safe_dump(config))
    return tmp_path / name


@pytest.mark.parametrize("config", [V2, V1], ids=["v2", "v1"])
def test_a_config_becomes_the_same_search(tmp_path, config):
    args, notes = command(experiment(tmp_path, config))
    script = tmp_path / "code" / "trial_script.py"
    assert args == [
        "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
        f"evaluator.command='python {script} --tag \\'a b\\''",  # Hydra's quoting of the shell's
        "agent=tpe", "evaluator.optimize_mode=minimize", "seed=3", "scheduler=median", "scheduler.start_step=2",
        "parallel=2", "budget.evaluations=6", "evaluator.timeout=90"]
    assert any(note.startswith("trials run in RUN_DIR/trials/<id>") for note in notes)
    assert any(note.startswith("experimentName ('demo') is not carried over") for note in notes) == (config is V2)


def test_inline_spaces_advisors_gpus_and_the_users_overrides(tmp_path):
    config = {"searchSpace": SPACE, "trialCommand": "python trial_script.py", "trialCodeDirectory": "code",
              "trialGpuNumber": 1, "maxExperimentDuration": "24h",
              "advisor": {"name": "Hyperband", "classArgs": {"R": 60, "eta": 2}}}
    args, notes = command(experiment(tmp_path, config), ["agent=ppo", "budget.evaluations=9"])
    written = tmp_path / "search_space.from_nni_config.json"
    assert json.loads(written.read_text()) == SPACE and f"env.search_space={written}" in args
    assert args[args.index("scheduler=hyperband"):][:3] == ["scheduler=hyperband", "scheduler.min_resource=1",
                                                            "scheduler.eta=2"] and "device=cuda" in args
    assert args[-2:] == ["agent=ppo", "budget.evaluations=9"] and "agent=random" not in args  # the user's win
    assert "maxExperimentDuration ('24h') is not carried over: the search stops at budget.evaluations; stop it " \
           "yourself and resume=RUN_DIR later" in notes


@pytest.mark.parametrize("change,message", [
    ({"tuner": {"name": "SMAC"}}, "tuner 'SMAC' has no rlnas counterpart; one of \\['Evolution', 'Random', 'TPE'\\]"),
    ({"assessor": {"name": "Curvefitting"}}, "assessor 'Curvefitting' has no rlnas counterpart; one of"),
    ({"trainingService": {"platform": "remote"}}, "rlnas runs trials on this machine \\(platform: local\\), or on "
                                                  "a Ray cluster"),
    ({"advisor": {"name": "Hyperband"}}, "set a tuner or an advisor \\(one of them\\)"),
    ({"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}},
     "optimize_mode \\['maximize', 'minimize'\\]: the tuner \\(or advisor\\) and the assessor must agree"),
    ({"maxTrialDuration": "soon"}, "maxTrialDuration='soon' must be a duration such as '30s'"),
    ({"trialConcurrency": 0}, "trialConcurrency=0 must be an integer >= 1"),
    ({"trialCodeDirectory": "nowhere"}, "trialCodeDirectory '.*nowhere' is not a folder"),
    ({"useAnnotation": True}, "useAnnotation has no rlnas counterpart"),
    ({"searchSpace": SPACE}, "give searchSpaceFile or searchSpace, not both"),
    ({"trialComand": "python x.py"}, "unknown key\\(s\\) \\['trialComand'\\]; rlnas reads"),
])
def test_what_has_no_counterpart_is_refused_by_name(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        command(experiment(tmp_path, {**V2, **change}))


def test_a_config_that_is_not_one_is_named(tmp_path):
    (tmp_path / "config.yml").write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="must be a mapping of keys, got list"):
        command(tmp_path / "config.yml")
    with pytest.raises(FileNotFoundError, match="NNI experiment config '.*missing.yml' not found"):
        command(tmp_path / "missing.yml")


@pytest.mark.slow
def test_rlnas_nni_runs_an_nni_experiment_minimizing_with_median_stopping(tmp_path):
    config = {**V2, "maxTrialNumber": 4, "trialConcurrency": 1}
    path = experiment(tmp_path, config)
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "rlnas.cli.nni", str(path), "quiet=true",
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = report_of(run_dir)
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        rows = [(score, json.loads(m)) for score, m in db.execute("SELECT score, metrics FROM evaluations")]
    assert report["agent"] == "tpe" and report["seed"] == 3 and report["evaluations"] == len(rows) == 4
    assert all(score == -m["value"] for score, m in rows)
    assert report["best_metrics"]["value"] == min(m["value"] for _, m in rows)  # minimised, as NNI would
    assert "rlnas-nni: experimentName ('demo') is not carried over" in proc.stderr
