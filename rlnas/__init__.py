"""rlnas: neural architecture search as a Gymnasium environment, with model-based RL agents.

Importing the package registers the environments::

    env = gymnasium.make("rlnas/NB201-v0")   # NAS-Bench-201 cell, scored from the table
    env = gymnasium.make("rlnas/NASNet-v0")  # NASNet micro cells, trained on digits
    env = gymnasium.make("rlnas/HPO-v0", space_kwargs={"search_space": "space.json"},
                         evaluator_kwargs={"fn": "my_module:objective"})
    env = gymnasium.make("rlnas/Model-v0", space=rlnas.model_space(MyNet))  # your model, trained

A model space is an ordinary PyTorch model written with :mod:`rlnas.nn`'s choices.

Packages, lowest first (import-linter contracts in pyproject.toml): ``core``, ``spaces``,
``data``, ``networks`` and ``nn``, ``execution``, ``evaluators``, ``envs``, ``world_models``,
``agents``, ``search``, ``cli``.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

for _env_id, _kwargs in (
    ("rlnas/NB201-v0", {"space": "nb201", "evaluator": "tabular"}),
    ("rlnas/NASNet-v0", {"space": "nasnet", "evaluator": "scratch"}),
    ("rlnas/HPO-v0", {"space": "hpo", "evaluator": "function"}),
    ("rlnas/Model-v0", {"space": "model", "evaluator": "train"}),
):
    if _env_id not in registry:
        register(id=_env_id, entry_point="rlnas.envs.nas_env:NASEnv", kwargs=_kwargs)


def model_space(factory, **kwargs):
    """The search space of ``factory(**kwargs)``, a model written with :mod:`rlnas.nn`'s choices."""
    from rlnas.nn import model_space as build

    return build(factory, **kwargs)
