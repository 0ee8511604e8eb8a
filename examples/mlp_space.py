"""An MLP space for tabular data: depth, width per layer, activation and dropout, searched
on scikit-learn's wine data (``python train.py env=model env.space=examples/mlp_space.py:MLP
evaluator=train dataset=python dataset.fn=examples.mlp_space:wine``)."""

import numpy as np
from torch import nn

from rlnas import nn as rnn


class Layer(nn.Module):
    def __init__(self, width_in, width_out, activation):
        super().__init__()
        self.fc = rnn.Linear(width_in, width_out)
        self.norm = rnn.BatchNorm1d(width_out)
        self.act = activation
        self.drop = rnn.Dropout(rnn.choice([0.0, 0.1, 0.3], label="dropout"))

    def forward(self, x):
        return self.drop(self.act(self.norm(self.fc(x))))


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        width = rnn.choice([16, 32, 64, 128], label="width")
        activation = rnn.LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU(), "tanh": nn.Tanh()}, label="activation")
        self.first = Layer(in_features, width, activation)
        self.hidden = rnn.Repeat(lambda i: Layer(width, width, activation), depth=(1, 3))
        self.head = rnn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.hidden(self.first(x)))


def wine() -> dict:
    """scikit-learn's 178 wines (13 features, 3 classes), standardised, split by the source's seed."""
    from sklearn.datasets import load_wine

    data = load_wine()
    x = data.data.astype(np.float32)
    return {"train": ((x - x.mean(0)) / x.std(0), data.target)}
