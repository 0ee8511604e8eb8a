"""Where work runs: a pool of workers, each holding state (an evaluator, a supernet) and
answering calls on it, in this process (``inline``), in worker processes (``process``) or on
Ray actors (``ray``). One interface (:class:`~rlnas.execution.pool.Pool`) for the
per-evaluation workers of ``parallel=N`` and the supernet's host alike. Importing this
package imports neither torch nor Ray."""
