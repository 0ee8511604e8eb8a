"""The supernet's agents on CPU and on CUDA, side by side: does each run end to end on the
GPU, and what does the GPU buy at the supernet's default size (8 channels, digits)?

    python benchmarks/cuda_path.py                          # on a machine with a GPU
    python benchmarks/cuda_path.py --devices cpu            # the CPU rows alone

Every row is one ``train.py`` run in a fresh run directory, as a user would start it:

* DARTS (first and second order), GDAS and SNAS search their mixed supernet on digits and
  derive one cell, scored by the run's evaluator (NB201: the bundled table; NASNet: trained
  from scratch on the run's device). "s / step" is the search's seconds per epoch, from the
  report's per-epoch history, the derived cell's scoring left out; "free" is the share of
  parameter-free ops in the derived cell, where a collapse shows.
* REINFORCE and Dreamer V2 search on the supernet evaluator (its worker process holds the
  supernet on the run's device and trains it, ENAS mode, on every evaluation). "s / step" is
  the search's wall time per evaluation: it holds whatever of the worker's set-up of the
  supernet the first evaluation still waits for, not the process's spawn; the stand-alone
  retrain of the best cells is left out (``evaluator.retrain.top_k=0``): it is the scratch
  evaluator, which the NASNet rows above and benchmarks/parallel_scaling.py time.

"score" is the report's best search score (NB201: the table's validation accuracy of the
cell; NASNet: the cell's validation accuracy trained from scratch; supernet: the supernet's
score), "test" its test score where the evaluator has one. The epochs are fewer than
the presets', so that both devices fit in minutes: these rows time the code paths, they do
not rank the methods (benchmarks/oneshot_search.py does).
"""

from __future__ import annotations

import argparse

from parallel_scaling import train_report


def rows(nb201_epochs: int, nasnet_epochs: int, evaluations: int) -> list[tuple[str, list[str]]]:
    """(label, train.py overrides) of every run, without the device."""
    spaces = {"nb201": ["env=nb201", f"agent.epochs={nb201_epochs}"],
              "nasnet": ["env=nasnet", "evaluator=scratch", f"agent.epochs={nasnet_epochs}"]}
    one_shot = [(f"{agent} {space}", [f"agent={agent}", *overrides])
                for space, overrides in spaces.items() for agent in ("darts", "gdas", "snas")]
    one_shot.insert(1, ("darts nb201 order 2", ["agent=darts", *spaces["nb201"], "agent.order=2"]))
    sampled = [(f"{agent} {env} supernet", [f"agent={agent}", f"env={env}", "evaluator=supernet",
                                            "evaluator.retrain.top_k=0", f"budget.evaluations={evaluations}"])
               for agent in ("reinforce", "dreamer_v2") for env in ("nb201", "nasnet")]
    return one_shot + sampled


def cells(report: dict) -> str:
    """The table's columns after the device: wall s | s / step | score | test | free."""
    search = report.get("search") or {}
    history = search.get("history")
    if history:  # a one-shot search: its epochs
        per_step = sum(h["seconds"] for h in history) / len(history)
        free = f"{history[-1]['parameter_free']:.0%}"
    else:
        per_step, free = report["wall_seconds"] / report["evaluations"], "-"
    test = report.get("best_test_score")
    return (f"{report['wall_seconds']:.1f} | {per_step:.3f} | {report['best_search_score']:.4f} | "
            f"{'-' if test is None else f'{test:.4f}'} | {free}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--nb201-epochs", type=int, default=5)
    parser.add_argument("--nasnet-epochs", type=int, default=1)
    parser.add_argument("--evaluations", type=int, default=20, help="of each search on the supernet evaluator")
    parser.add_argument("--only", nargs="*", default=None, help="run the rows whose label starts with one of these")
    args = parser.parse_args()

    print("| run | device | wall s | s / step | score | test | free |")
    print("|---|---|---:|---:|---:|---:|---:|")
    failed = []
    for label, overrides in rows(args.nb201_epochs, args.nasnet_epochs, args.evaluations):
        if args.only and not any(label.startswith(prefix) for prefix in args.only):
            continue
        for device in args.devices:
            try:
                print(f"| {label} | {device} | {cells(train_report(*overrides, f'device={device}'))} |", flush=True)
            except RuntimeError as err:  # one broken path must not hide the others' rows
                print(f"| {label} | {device} | failed | | | | |", flush=True)
                failed.append(str(err))
    for err in failed:
        print(f"\n{err}")
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed")


if __name__ == "__main__":
    main()
