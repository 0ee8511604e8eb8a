"""The search: a run's settings, built into a search (:mod:`.build`), driven by one driver
with three strategies (:mod:`.driver`, :mod:`.lockstep`), and reported (:mod:`.report`);
beside it, what a search weighs and stops by: rewards, Pareto fronts, schedulers.
:func:`rlnas.search.runner.run` is all of it for one run directory."""
