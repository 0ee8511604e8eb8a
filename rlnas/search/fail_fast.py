"""Stop a search whose evaluations all fail the same way: a missing module, a typo in the
command or a missing data file would otherwise spend the whole budget finding that out.

Failures that differ, or that alternate with results, are information (a failing region of
the space) and never stop a search; ``fail_fast`` evaluations in a row that fail alike do.
"""

from __future__ import annotations

from rlnas.core.store import Evaluation


class SystematicFailure(RuntimeError):
    """The search stopped: its last evaluations all failed alike. ``str()`` says how."""

    EXIT_CODE = 3


def failure_key(evaluation: Evaluation) -> tuple | None:
    """What makes two failures alike (None: ``evaluation`` did not fail): a trial's exit code
    and the last line of its stderr (its own directory and id left out: ``python: can't open
    file '.../trials/<id>/train.py'`` is one error), or the error another evaluator gave."""
    metrics = evaluation.metrics
    if "failed" not in metrics:
        return None
    line = last_line(metrics)
    for own in ("trial_dir", "trial_id"):
        if metrics.get(own):
            line = line.replace(str(metrics[own]), f"<{own}>")
    return metrics.get("exit_code"), line


def last_line(metrics: dict) -> str:
    """A failed trial's last line of stderr, or the error another evaluator gave."""
    lines = [line.strip() for line in str(metrics.get("stderr_tail", "")).splitlines() if line.strip()]
    return lines[-1] if lines else str(metrics["failed"])


class FailFast:
    """Watches each evaluation as it is stored; raises :class:`SystematicFailure` at the
    ``limit``-th failure in a row with one key (``limit`` None: never)."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.key: tuple | None = None
        self.first: dict = {}  # the metrics of the first failure of the run of alike ones
        self.count = 0

    def see(self, evaluation: Evaluation) -> None:
        key = failure_key(evaluation)
        if key is None or key != self.key:
            self.key, self.first, self.count = key, evaluation.metrics, 0
        if key is None or self.limit is None:
            return
        self.count += 1
        if self.count >= self.limit:
            raise SystematicFailure(self.message())

    def message(self) -> str:
        exit_code = self.key[0]
        lines = [f"stopped: the last {self.count} evaluations all failed the same way"
                 + ("" if exit_code is None else f" (exit code {exit_code})") + ":", f"  {last_line(self.first)}"]
        if self.first.get("trial_dir"):
            lines.append(f"  one of them ran in {self.first['trial_dir']} (its stdout.log and stderr.log say more)")
        return "\n".join(lines)
