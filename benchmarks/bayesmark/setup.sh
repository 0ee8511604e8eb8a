#!/usr/bin/env bash
# The Bayesmark benchmark's environments, made by this one command from the project root:
#   bash benchmarks/bayesmark/setup.sh
# .venv: bayesmark 0.0.8 imports scikit-learn's load_boston (gone in 1.2), so scikit-learn 1.1.3
# and numpy 1.24 (HEBO pins numpy < 1.25); Optuna; HEBO with its dependencies pinned (pip's
# resolver does not finish on a plain `pip install hebo`); rlnas from this checkout without its
# own scikit-learn>=1.3 pin (it needs scikit-learn only for the digits data set).
# .venv-smac: SMAC3 needs scikit-learn >= 1.6, so it runs in a process of its own and asks
# bayesmark's process to evaluate (benchmarks/bayesmark/smac_worker.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

python3 -m venv --clear "$here/.venv"
pip="$here/.venv/bin/pip"
export PIP_CONSTRAINT="$here/constraints.txt"
"$pip" install -q torch==2.13.0
"$pip" install -q numpy scikit-learn scipy pandas "bayesmark==0.0.8" "optuna"
"$pip" install -q "gymnasium>=1.0,<2" "hydra-core>=1.3,<1.4" "tqdm>=4.60" "matplotlib>=3.7" "tensorboard>=2.14"
"$pip" install -q --no-deps -e "$root"
# One at a time, wheels preferred: together pip's resolver does not finish, and building one of
# them from source needs setuptools' pkg_resources, which a fresh build environment no longer has.
# pymoo 0.6.0 comes only as source here: built with Cython, or its sorting runs in pure Python
# (and not from pip's cache, which may hold a wheel built without it).
hebo_deps_ok=true
"$pip" install -q "cython<3" "setuptools<81" wheel \
  && "$pip" install -q --no-cache-dir --no-build-isolation --no-binary pymoo "pymoo==0.6.0" || hebo_deps_ok=false
"$here/.venv/bin/python" -c "from pymoo.util.function_loader import is_compiled; assert is_compiled()" \
  || echo "pymoo is not compiled: HEBO will run, slower" >&2
for dep in GPy gpytorch catboost disjoint-set; do
  "$pip" install -q --prefer-binary "$dep" || hebo_deps_ok=false
done
if $hebo_deps_ok && "$pip" install -q --no-deps "hebo==0.3.6" \
    && "$here/.venv/bin/python" -c "import hebo.optimizers.hebo"; then
  echo "HEBO installed"
else
  echo "HEBO did not install: search.py leaves method 'hebo' out, saying so" >&2
fi

unset PIP_CONSTRAINT
python3 -m venv --clear "$here/.venv-smac"
"$here/.venv-smac/bin/pip" install -q "smac>=2.2"
"$here/.venv/bin/python" -c "import bayesmark, optuna, rlnas; print('bayesmark environment ready')"
"$here/.venv-smac/bin/python" -c "from importlib.metadata import version; print('SMAC3', version('smac'), 'ready')"
