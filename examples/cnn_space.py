"""A small residual CNN as a model space: a width, an op per stage, a depth per stage, and
whether each block adds its input back (``python train.py env=model
env.space=examples/cnn_space.py:Net evaluator=train``)."""

from torch import nn

from rlnas import nn as rnn


def conv_bn(width, kernel: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(rnn.Conv2d(width, width, kernel, padding=kernel // 2, groups=groups, bias=False),
                         rnn.BatchNorm2d(width), nn.ReLU())


class Block(nn.Module):
    """One op of the stage's choice, then its output alone or with the block's input added."""

    def __init__(self, width, stage: str):
        super().__init__()
        self.op = rnn.LayerChoice({
            "conv3x3": conv_bn(width, 3),
            "conv5x5": conv_bn(width, 5),
            "sep3x3": nn.Sequential(conv_bn(width, 3, groups=width), conv_bn(width, 1)),
        }, label=f"{stage}.op")  # one op for every block of the stage
        self.residual = rnn.InputChoice(2, n_chosen=1)  # [op(x)] or [op(x) + x]

    def forward(self, x):
        h = self.op(x)
        return self.residual([h, h + x])


class Net(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        width = rnn.choice([16, 32, 48], label="width")
        self.stem = nn.Sequential(rnn.Conv2d(in_channels, width, 3, padding=1, bias=False), rnn.BatchNorm2d(width),
                                  nn.ReLU())
        self.stage1 = rnn.Repeat(lambda i: Block(width, "stage1"), depth=(1, 3))
        self.pool = nn.MaxPool2d(2)
        self.stage2 = rnn.Repeat(lambda i: Block(width, "stage2"), depth=(1, 2))
        self.head = rnn.Linear(width, num_classes)

    def forward(self, x):
        x = self.stage2(self.pool(self.stage1(self.stem(x))))
        return self.head(x.mean((2, 3)))
