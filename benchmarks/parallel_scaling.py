"""Wall time of a search whose evaluations train children from scratch, at parallel=1 and
parallel=N: what more workers buy on this machine.

    python benchmarks/parallel_scaling.py                        # 40 NASNet children on digits, CPU
    python benchmarks/parallel_scaling.py --device cuda --parallel 1 4
    python benchmarks/parallel_scaling.py --agent ppo              # the price of lock-step

Each setting is one ``train.py`` run in a fresh run directory; the wall time is the
report's, from the first proposal to the last result, worker start-up included. With the
default random search every setting trains the same 40 children (the same seed proposes
the same cells whatever the parallelism); a learning agent's cells differ between settings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train_report(*overrides: str) -> dict:
    """One ``python train.py OVERRIDES`` in a fresh run directory: its report.json. A failed
    run raises with the end of its stderr, which says why."""
    with tempfile.TemporaryDirectory() as run_dir:
        done = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides, "quiet=true",
                               f"hydra.run.dir={run_dir}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"train.py {' '.join(overrides)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        return json.loads((Path(run_dir) / "report.json").read_text())


def one_run(agent: str, parallel: int, evaluations: int, device: str, backend: str) -> dict:
    return train_report(f"agent={agent}", "env=nasnet", "evaluator=scratch", f"parallel={parallel}",
                        f"backend={backend}", f"device={device}", f"budget.evaluations={evaluations}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="random")
    parser.add_argument("--evaluations", type=int, default=40)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="process", choices=["process", "ray"])
    args = parser.parse_args()

    print(f"{args.agent}: {args.evaluations} scratch evaluations of NASNet children on digits, "
          f"device={args.device}, backend={args.backend}\n")
    print("| parallel | wall s | s / evaluation | speed-up | workers busy | best val acc |")
    print("|---:|---:|---:|---:|---:|---:|")
    base = None
    for parallel in args.parallel:
        report = one_run(args.agent, parallel, args.evaluations, args.device, args.backend)
        seconds = report["wall_seconds"]
        base = base or seconds
        busy = f"{report['busy_fraction']:.0%}" if "busy_fraction" in report else "-"  # parallel=1 has no pool
        print(f"| {parallel} | {seconds:.1f} | {seconds / report['evaluations']:.2f} | {base / seconds:.2f}x "
              f"| {busy} | {report['best_search_score']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
