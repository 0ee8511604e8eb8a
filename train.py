"""Run a search from a checkout: ``python train.py agent=ppo env=nb201 evaluator=tabular``.

The same command line as the installed ``rlnas-train`` (:mod:`rlnas.cli.train`); the config
groups are ``conf/`` (agent, env, evaluator).
"""

from rlnas.cli.train import main

if __name__ == "__main__":
    main()
