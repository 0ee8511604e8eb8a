"""The command lines: ``rlnas-train`` (``python train.py`` in a checkout) and ``rlnas-nni``."""
