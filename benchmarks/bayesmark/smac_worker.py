"""SMAC3's side of the ``smac`` method (benchmarks/bayesmark/search.py), run in ``.venv-smac``.

It reads ``{"api": Bayesmark's space, "evaluations": n, "seed": s}``, then for each trial
writes ``{"params": {...}}`` and reads ``{"loss": float or null}`` (null: the point failed),
and ends with ``{"done": true}``, early where SMAC finds no configuration it has not tried (a
small discrete space). SMAC's hyperparameter facade with its defaults (random forest, its
initial design), deterministic objective.
"""

import json
import sys
import tempfile

from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
from smac import HyperparameterOptimizationFacade, Scenario
from smac.main.exceptions import ConfigurationSpaceExhaustedException
from smac.runhistory.dataclasses import TrialValue
from smac.runhistory.enumerations import StatusType


def space(api: dict, seed: int) -> ConfigurationSpace:
    cs = ConfigurationSpace(seed=seed)
    for key, p in api.items():
        if p["type"] in ("bool", "cat"):
            cs.add(Categorical(key, [False, True] if p["type"] == "bool" else p["values"]))
        elif p["type"] == "int":
            cs.add(Integer(key, tuple(p["range"]), log=p["space"] == "log"))
        else:
            cs.add(Float(key, tuple(p["range"]), log=p["space"] == "log"))
    return cs


def main() -> None:
    request = json.loads(sys.stdin.readline())
    with tempfile.TemporaryDirectory() as out:
        scenario = Scenario(space(request["api"], request["seed"]), deterministic=True,
                            n_trials=request["evaluations"], seed=request["seed"], output_directory=out)
        smac = HyperparameterOptimizationFacade(scenario, lambda config, seed=0: 0.0, overwrite=True,
                                                logging_level=40)
        for _ in range(request["evaluations"]):
            try:
                info = smac.ask()
            except ConfigurationSpaceExhaustedException:
                break
            params = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(info.config).items()}
            print(json.dumps({"params": params}), flush=True)
            loss = json.loads(sys.stdin.readline())["loss"]
            smac.tell(info, TrialValue(cost=loss) if loss is not None else TrialValue(cost=float("inf"),
                                                                                      status=StatusType.CRASHED))
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
