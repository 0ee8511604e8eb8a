"""rlnas's stand-in for NNI's trial API: ``import nni`` in a trial that rlnas runs is this.

An NNI trial script runs unchanged: its calls are answered by :mod:`rlnas.trial`. The trial
evaluator puts this folder's parent first on the trial's ``PYTHONPATH``. An NNI installed in
the trial's interpreter would, outside NNI's manager, hand the script no parameters and
report nowhere; the trial still gets this module, and its stderr says so.
"""

import sys
from importlib.machinery import PathFinder
from pathlib import Path

from rlnas.trial import (  # noqa: F401  (this module's interface)
    get_current_parameter,
    get_experiment_id,
    get_next_parameter,
    get_sequence_id,
    get_trial_id,
    report_final_result,
    report_intermediate_result,
)

ANSWERED = ("get_next_parameter", "get_current_parameter", "report_intermediate_result", "report_final_result",
            "get_trial_id", "get_experiment_id", "get_sequence_id", "utils.merge_parameter")

_HERE = Path(__file__).resolve().parent.parent
_installed = PathFinder.find_spec("nni", [p for p in sys.path if Path(p or ".").resolve() != _HERE])
if _installed is not None:
    print(f"rlnas: this trial's `import nni` is rlnas's stand-in ({__file__}), not the NNI installed at "
          f"{_installed.origin}, which outside NNI's manager gets no parameters", file=sys.stderr)


def __getattr__(name: str):
    raise AttributeError(f"nni.{name} is not answered when rlnas runs the trial: rlnas answers NNI's trial calls "
                         f"nni.{', nni.'.join(ANSWERED)}; for anything else, import it from rlnas (rlnas.trial, "
                         "docs/hpo.md) or run the script under NNI itself")
