"""The search: built, driven and reported, with its rewards, Pareto fronts and schedulers."""
