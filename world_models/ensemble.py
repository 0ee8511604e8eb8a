"""An ensemble world model of the episode's reward, for envs whose reward comes at the end.

On NASEnv an episode is a sequence of decisions and its only reward is the score of the
architecture they build, so the whole model an agent needs to plan is ``decisions ->
score``. Several MLPs fitted from different initialisations disagree where data is thin;
their spread is the uncertainty a planner trades against the mean (as in PETS, Chua et
al. 2018, and BANANAS, White et al. 2021). The members are one batched network: ``M``
weight matrices multiplied at once, so the ensemble costs about what one MLP costs.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class RewardEnsemble(nn.Module):
    """``members`` MLPs (``layers`` hidden layers of ``hidden`` ReLU units) from inputs of
    size ``in_dim`` to a scalar, fitted to standardised targets."""

    def __init__(self, in_dim: int, members: int = 5, hidden: int = 64, layers: int = 2):
        super().__init__()
        sizes = [in_dim] + [hidden] * layers + [1]
        self.weights = nn.ParameterList(torch.empty(members, a, b) for a, b in itertools.pairwise(sizes))
        self.biases = nn.ParameterList(torch.empty(members, 1, b) for b in sizes[1:])
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised predictions of every member: ``(N, in_dim) -> (members, N)``."""
        h = x.unsqueeze(0).expand(len(self.weights[0]), -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def fit(self, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, weight_decay: float,
            generator: torch.Generator) -> float:
        """Re-initialise from ``generator`` and fit every member to all of ``(x, y)`` by
        full-batch Adam; returns the final mean squared error (standardised units).

        Starting afresh each time makes the model a function of the data and the generator
        alone: a resumed search refits exactly the model the uninterrupted one had.
        """
        with torch.no_grad():
            for w, b in zip(self.weights, self.biases, strict=True):
                bound = w.shape[1] ** -0.5  # nn.Linear's default initialisation
                w.copy_(torch.rand(w.shape, generator=generator) * 2 * bound - bound)
                b.copy_(torch.rand(b.shape, generator=generator) * 2 * bound - bound)
            self.target_mean.copy_(y.mean())
            self.target_std.copy_(y.std().clamp_min(1e-8) if len(y) > 1 else torch.ones(()))
        target = ((y - self.target_mean) / self.target_std).expand(len(self.weights[0]), -1)
        optimizer = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            loss = (self(x) - target).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation over members, in the targets' units."""
        pred = self(x) * self.target_std + self.target_mean
        return pred.mean(0), pred.std(0) if len(pred) > 1 else torch.zeros(pred.shape[1])
