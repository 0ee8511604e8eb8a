"""The search: built (:mod:`.build`), driven (:mod:`.driver`) and reported (:mod:`.report`),
beside the rewards, Pareto fronts and schedulers it weighs and stops by."""
