"""Where work runs: a :class:`~rlnas.execution.pool.Pool` of workers, each holding state
(an evaluator, a supernet), in this process (``inline``), in processes (``process``) or on
Ray actors (``ray``). Importing it imports neither torch nor Ray."""
