"""rlnas: neural architecture search as a Gymnasium environment, with model-based RL agents.

Importing the package registers the environments::

    env = gymnasium.make("rlnas/NB201-v0")   # NAS-Bench-201 cell, scored from the table
    env = gymnasium.make("rlnas/NASNet-v0")  # NASNet micro cells, trained on digits
    env = gymnasium.make("rlnas/HPO-v0", space_kwargs={"search_space": "space.json"},
                         evaluator_kwargs={"fn": "my_module:objective"})

Packages, lowest first (import-linter contracts in pyproject.toml): ``core``, ``spaces``,
``data``, ``networks``, ``execution``, ``evaluators``, ``envs``, ``world_models``,
``agents``, ``search``, ``cli``.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

for _env_id, _kwargs in (
    ("rlnas/NB201-v0", {"space": "nb201", "evaluator": "tabular"}),
    ("rlnas/NASNet-v0", {"space": "nasnet", "evaluator": "scratch"}),
    ("rlnas/HPO-v0", {"space": "hpo", "evaluator": "function"}),
):
    if _env_id not in registry:
        register(id=_env_id, entry_point="rlnas.envs.nas_env:NASEnv", kwargs=_kwargs)
