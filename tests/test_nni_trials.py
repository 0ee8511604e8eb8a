"""NNI trial scripts run unchanged (``import nni`` is rlnas's stand-in), and a search whose
trials all fail alike stops, says why and resumes once fixed (rlnas/search/fail_fast.py)."""

import argparse
import json
import math
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import yaml

from rlnas.cli.train import compose
from rlnas.core.store import Evaluation
from rlnas.evaluators import TrialEvaluator
from rlnas.nni_stand_in.nni.utils import merge_parameter
from rlnas.search.fail_fast import FailFast, SystematicFailure
from rlnas.search.runner import load_run_config, run
from rlnas.spaces.hpo import HPOSpace

NNI_TRIAL = textwrap.dedent("""\
    import argparse
    import nni
    from nni.utils import merge_parameter

    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float, default=0.0)
    args = merge_parameter(parser.parse_args([]), nni.get_next_parameter())
    for epoch in range(3):
        nni.report_intermediate_result(args.x * (epoch + 1) / 3)
    nni.report_final_result({"default": args.x, "sequence": nni.get_sequence_id(), "trial": nni.get_trial_id(),
                             "experiment": nni.get_experiment_id()})
    """)
SPACE = {"x": {"_type": "choice", "_value": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}}


def nni_experiment(tmp_path, script: str, **keys) -> str:
    (tmp_path / "trial.py").write_text(script)
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    config = {"searchSpaceFile": "space.json", "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": ".",
              "tuner": {"name": "Random", "classArgs": {"seed": 0}}, "trainingService": {"platform": "local"}, **keys}
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    return str(tmp_path / "config.yml")


def rlnas_nni(config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlnas.cli.nni", config, "quiet=true", *args], capture_output=True,
                          text=True, timeout=300)


def rows(run_dir) -> list[tuple[str, float, dict]]:
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        return [(a, s, json.loads(m)) for a, s, m in db.execute("SELECT arch, score, metrics FROM evaluations "
                                                                 "ORDER BY seq")]


@pytest.mark.slow
def test_an_nni_trial_runs_unchanged_through_rlnas_nni_two_at_a_time(tmp_path):
    proc = rlnas_nni(nni_experiment(tmp_path, NNI_TRIAL, trialConcurrency=2, maxTrialNumber=6),
                     f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr
    for line in ("rlnas-nni: tuner: Random -> agent=random seed=0", "rlnas-nni: trialConcurrency: 2 -> parallel=2",
                 "rlnas-nni: maxTrialNumber: 6 -> budget.evaluations=6"):
        assert line in proc.stderr  # what each key became, first
    stored = rows(tmp_path / "run")
    assert len(stored) == 6 and not any("failed" in m for _, _, m in stored)
    for arch, score, metrics in stored:  # the script's parameters, curve and result reached the store
        x = json.loads(arch)["x"]
        assert score == x and metrics["intermediate"] == pytest.approx([x / 3, 2 * x / 3, x])
    assert sorted(m["sequence"] for _, _, m in stored) == list(range(6))
    assert {m["experiment"] for _, _, m in stored} == {yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())[
        "run_id"]}


def trial_on(tmp_path, script: str, x: float = 0.5) -> Evaluation:
    (tmp_path / "trial.py").write_text(script)
    space = HPOSpace(SPACE)
    evaluator = TrialEvaluator(space, f"{sys.executable} {tmp_path / 'trial.py'}", workdir=tmp_path / "trials")
    return evaluator.evaluate(space.to_string((SPACE["x"]["_value"].index(x),)))


def test_sequence_ids_count_the_trials_in_the_order_they_start(tmp_path):
    evaluations = [trial_on(tmp_path, NNI_TRIAL, x) for x in (0.1, 0.2, 0.3)]
    assert [e.metrics["sequence"] for e in evaluations] == [0, 1, 2]
    assert [e.metrics["trial"] for e in evaluations] == [e.metrics["trial_id"] for e in evaluations]


def test_an_nni_call_rlnas_does_not_answer_fails_the_trial_naming_it(tmp_path):
    evaluation = trial_on(tmp_path, "import nni\n\nnni.trace(print)\n")
    assert evaluation.score == -math.inf and evaluation.metrics["exit_code"] == 1
    assert "AttributeError: nni.trace is not answered when rlnas runs the trial: rlnas answers NNI's trial calls " \
           "nni.get_next_parameter, " in evaluation.metrics["stderr_tail"]


def test_an_installed_nni_is_named_and_the_trial_gets_the_stand_in(tmp_path, monkeypatch):
    (tmp_path / "site" / "nni").mkdir(parents=True)
    (tmp_path / "site" / "nni" / "__init__.py").write_text("raise ImportError('the real NNI was imported')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    evaluation = trial_on(tmp_path, NNI_TRIAL, 0.4)
    assert evaluation.score == 0.4
    stderr = (tmp_path / "trials" / evaluation.metrics["trial_id"] / "stderr.log").read_text()
    assert f"not the NNI installed at {tmp_path / 'site' / 'nni' / '__init__.py'}" in stderr


def test_merge_parameter_sets_the_tuners_values_in_the_scripts_types():
    base = argparse.Namespace(lr=0.1, epochs=10, name="a")
    assert vars(merge_parameter(base, {"lr": 0.5, "epochs": 3.0})) == {"lr": 0.5, "epochs": 3, "name": "a"}
    assert merge_parameter({"lr": 0.1}, {"lr": 1}) == {"lr": 1.0}
    with pytest.raises(ValueError, match="'momentum' is not a parameter of Namespace"):
        merge_parameter(base, {"momentum": 0.9})


def failure(line: str, trial: str = "t1", code: int = 1) -> Evaluation:
    return Evaluation("a", -math.inf, {"failed": f"trial exited with code {code}", "exit_code": code,
                                       "trial_id": trial, "trial_dir": f"/run/trials/{trial}",
                                       "stderr_tail": f"Traceback ...\n  {line}\n"})


def watch(sequence, limit=5) -> int:
    """How many evaluations of ``sequence`` the rule let through before it stopped (all: it did not)."""
    rule = FailFast(limit)
    for seen, evaluation in enumerate(sequence):
        try:
            rule.see(evaluation)
        except SystematicFailure:
            return seen + 1
    return len(sequence)


def test_the_rule_stops_at_the_fifth_failure_alike_in_a_row_and_never_otherwise():
    ok, a, b = Evaluation("a", 0.5), failure("ModuleNotFoundError: No module named 'nni'"), failure("OSError: disk")
    assert watch([a] * 9) == 5  # the first five
    assert watch([ok, ok, a, a, a, a, ok, a, a, a, a, a, ok]) == 12  # and any five in a row
    assert watch([a, a, a, a, ok] * 4) == 20 and watch([a, b] * 10) == 20  # a failing region, failures that differ
    assert watch([failure("x", code=1)] * 4 + [failure("x", code=2)] * 4) == 8  # another exit code, another error
    assert watch([a] * 9, limit=None) == 9  # fail_fast=null: never
    # a trial's own directory in its error does not make the failures differ
    typo = [failure(f"python: can't open file '/run/trials/t{i}/train.py'", trial=f"t{i}") for i in range(5)]
    assert watch(typo) == 5


def test_the_stop_names_the_error_a_trial_directory_and_how_to_go_on():
    rule = FailFast(2)
    rule.see(failure("ModuleNotFoundError: No module named 'nni'", trial="t1"))
    with pytest.raises(SystematicFailure) as stop:
        rule.see(failure("ModuleNotFoundError: No module named 'nni'", trial="t2"))
    assert str(stop.value) == ("stopped: the last 2 evaluations all failed the same way (exit code 1):\n"
                               "  ModuleNotFoundError: No module named 'nni'\n"
                               "  one of them ran in /run/trials/t1 (its stdout.log and stderr.log say more)")


BREAKS_AFTER_3 = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    import nni

    params, log = nni.get_next_parameter(), Path(sys.argv[1])
    runs = log.read_text().splitlines() if log.exists() else []
    log.write_text("\\n".join([*runs, json.dumps(params)]) + "\\n")
    if len(runs) >= 3 and not (log.parent / "fixed").exists():
        sys.exit("FileNotFoundError: data/train.csv")  # the data went away after three trials
    nni.report_final_result(params["x"])
    """)


@pytest.mark.slow
def test_a_systematic_failure_stops_with_exit_code_3_and_resume_after_the_fix_pays_no_success_twice(tmp_path):
    log, run_dir = tmp_path / "runs.log", tmp_path / "run"
    config = nni_experiment(tmp_path, BREAKS_AFTER_3, maxTrialNumber=8, trialCommand=f"{sys.executable} trial.py {log}")
    proc = rlnas_nni(config, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 3, proc.stderr
    assert "stopped: the last 5 evaluations all failed the same way (exit code 1):\n" \
           "  FileNotFoundError: data/train.csv\n  one of them ran in " in proc.stderr
    assert f"fix that, then continue: rlnas-train resume={run_dir} (the failed evaluations run again" in proc.stderr
    before = rows(run_dir)
    assert [("failed" in m) for _, _, m in before] == [False] * 3 + [True] * 5  # stopped at the fifth

    (tmp_path / "fixed").touch()
    run(load_run_config(run_dir), run_dir, resume=True)  # as rlnas-train resume=RUN_DIR, in process
    after = rows(run_dir)
    assert len(after) == 8 == len({a for a, _, _ in after}) and not any("failed" in m for _, _, m in after)
    paid = [json.loads(line) for line in log.read_text().splitlines()]
    successes_before = [json.loads(a) for a, _, m in before if "failed" not in m]
    assert all(paid.count(params) == 1 for params in successes_before)  # none of them run again
    assert len(paid) == 3 + 5 + 5  # the five failures once more, now fixed


def test_failures_on_half_the_space_do_not_stop_the_search_and_resume_retries_them_unless_told(tmp_path):
    # Every point of the space is evaluated, and only four fail: no five can fail in a row.
    script = ("import sys\nimport nni\n\nx = nni.get_next_parameter()['x']\nprint(x, file=open(sys.argv[1], 'a'))\n"
              "sys.exit('ValueError: x too large') if x > 0.45 else nni.report_final_result(x)\n")
    (tmp_path / "trial.py").write_text(script)
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    log, run_dir = tmp_path / "runs.log", tmp_path / "run"
    report = run(compose(["agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}",
                          "evaluator=trial", f"evaluator.command={sys.executable} {tmp_path / 'trial.py'} {log}",
                          "budget.evaluations=8", "parallel=2", "quiet=true"]), run_dir)  # resume retries on workers
    assert report["evaluations"] == 8 and sum("failed" in m for _, _, m in rows(run_dir)) == 4

    def resumed(retry_failed: bool) -> list[str]:
        config = load_run_config(run_dir)
        config.retry_failed = retry_failed
        run(config, run_dir, resume=True)
        return log.read_text().split()

    assert len(resumed(retry_failed=False)) == 8  # failures kept: nothing to run
    assert sorted(resumed(retry_failed=True)[8:]) == ["0.5", "0.6", "0.7", "0.8"]  # the four failures, again
    assert sum("failed" in m for _, _, m in rows(run_dir)) == 4 and len(rows(run_dir)) == 8
