"""Wall time of a search whose evaluations train children from scratch, at parallel=1 and
parallel=N: what ``evaluator.workers`` buys on this machine.

    python benchmarks/parallel_scaling.py                        # 40 NASNet children on digits, CPU
    python benchmarks/parallel_scaling.py --device cuda --parallel 1 4

Each setting is one ``train.py`` run (random search, so every setting trains the same 40
children: the same seed proposes the same cells whatever the parallelism), in a fresh
run directory; the wall time is the report's, from the first proposal to the last result,
worker start-up included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(parallel: int, evaluations: int, device: str, backend: str) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        subprocess.run([sys.executable, str(ROOT / "train.py"), "agent=random", "env=nasnet", "evaluator=scratch",
                        f"parallel={parallel}", f"evaluator.backend={backend}", f"device={device}",
                        f"budget.evaluations={evaluations}", "quiet=true", f"hydra.run.dir={run_dir}"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return json.loads((Path(run_dir) / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=40)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="process", choices=["process", "ray"])
    args = parser.parse_args()

    print(f"{args.evaluations} scratch evaluations of NASNet children on digits, device={args.device}, "
          f"backend={args.backend}\n")
    print("| parallel | wall s | s / evaluation | speed-up | best val acc |")
    print("|---:|---:|---:|---:|---:|")
    base = None
    for parallel in args.parallel:
        report = one_run(parallel, args.evaluations, args.device, args.backend)
        seconds = report["wall_seconds"]
        base = base or seconds
        print(f"| {parallel} | {seconds:.1f} | {seconds / report['evaluations']:.2f} | {base / seconds:.2f}x "
              f"| {report['best_search_score']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
