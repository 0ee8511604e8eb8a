"""Model spaces in plain PyTorch: choices inside an ordinary ``nn.Module``.

::

    from torch import nn
    import rlnas
    from rlnas import nn as rnn

    class Net(nn.Module):
        def __init__(self, num_classes: int = 10):
            super().__init__()
            width = rnn.choice([16, 32, 64], label="width")
            self.stem = rnn.Conv2d(1, width, 3, padding=1)
            self.op = rnn.LayerChoice({"conv3": rnn.Conv2d(width, width, 3, padding=1),
                                       "skip": nn.Identity()})
            self.head = rnn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(self.op(self.stem(x).relu()).mean((2, 3)))

    space = rlnas.model_space(Net)              # a SearchSpace: 2 decisions, 6 architectures
    net = rnn.fixed_arch(Net, {"width": 32, "op": "conv3"})   # a plain nn.Module
"""

from rlnas.nn.choices import ChosenInputs, InputChoice, LayerChoice, Repeat, ValueChoice, choice
from rlnas.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Linear, Valued
from rlnas.nn.space import Blueprint, ModelSpace, fixed_arch, freeze, load_factory, model_space

__all__ = ["BatchNorm1d", "BatchNorm2d", "Blueprint", "ChosenInputs", "Conv2d", "Dropout", "InputChoice",
           "LayerChoice", "Linear", "ModelSpace", "Repeat", "ValueChoice", "Valued", "choice", "fixed_arch",
           "freeze", "load_factory", "model_space", "model_wrapper"]


def model_wrapper(cls):
    """NNI's class decorator for a model space; rlnas needs none, so it returns ``cls``."""
    return cls


def __getattr__(name: str):
    """Everything else of ``torch.nn`` (``Module``, ``ReLU``, ``Sequential``...), so a model
    space written as ``import nni.retiarii.nn.pytorch as nn`` runs as ``import rlnas.nn as nn``."""
    import torch.nn

    try:
        return getattr(torch.nn, name)
    except AttributeError:
        raise AttributeError(f"rlnas.nn has no {name!r} (nor has torch.nn)") from None
