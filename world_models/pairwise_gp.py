"""A Gaussian-process model of an episode's final reward: Bayesian linear regression on the
one-hot decisions and every pair of them,

    score(a) = b + sum_i u[i, a_i] + sum_{i<j} p[i, j, a_i, a_j],
    b ~ N(0, bias_scale^2), u ~ N(0, unary_scale^2), p ~ N(0, pair_scale^2),

whose kernel depends only on the number ``m`` of decisions two cells share,
``k = bias_scale^2 + unary_scale^2 m + pair_scale^2 m (m - 1) / 2``. Functions are drawn by
Matheron's rule (Wilson et al. 2020); one draw scores a cell by summing ``1 + D + D(D-1)/2``
weights, which makes Thompson sampling over all 15,625 NB201 cells cheap.

A ``feature`` known before evaluation (a zero-cost proxy; several: a column each) adds
``v . feature(a)``, ``v ~ N(0, feature_scale^2 I)``: the data weigh the proxies. ``classes``
(an op's: none, parameter-free, convolution) add the two terms again on classes, so one
evaluation of a 3x3 conv on an edge says something about a 1x1 there (docs/world-models.md,
"The planner").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class _Terms:
    """The unary and pair weights of one alphabet: the choices themselves, or their classes."""
    symbol: torch.Tensor  # (D, max_choices): each decision's choices' symbols in this alphabet
    size: int  # symbols in the alphabet
    unary_offset: torch.Tensor  # (D,): where decision i's weights start
    pair_offset: torch.Tensor  # (D(D-1)/2,): where pair (i, j)'s weights start
    unary_scale: float
    pair_scale: float


class PairwiseGP:
    """Bayesian regression on one-hot decisions and their pairs, for ``num_decisions``
    decisions of at most ``max_choices`` choices each. Targets are standardised before
    fitting, and the scales are in those units."""

    def __init__(self, num_decisions: int, max_choices: int, bias_scale: float = 1.0,
                 unary_scale: float = 1.0, pair_scale: float = 0.1, noise: float = 0.3,
                 feature: Callable[[torch.Tensor], torch.Tensor] | None = None, feature_scale: float = 0.0,
                 classes: Sequence[Sequence[int]] | None = None, class_scale: float = 0.0,
                 class_pair_scale: float = 0.0):
        self.bias_scale = bias_scale
        # Without a feature, one that is 0 everywhere: its terms add exact zeros, so the floats are unchanged.
        self._feature = feature or (lambda archs: torch.zeros(len(archs), dtype=torch.float64))
        self.feature_scale = feature_scale
        self.noise = noise
        pairs = torch.tensor(list(itertools.combinations(range(num_decisions), 2)), dtype=torch.long)
        self.left, self.right = pairs.reshape(-1, 2).unbind(1)
        # Weight layout: [bias | per alphabet: unary (decision, symbol) | pair (pair, symbol_i, symbol_j)].
        self.decision = torch.arange(num_decisions)
        alphabets = [(torch.arange(max_choices).expand(num_decisions, -1), unary_scale, pair_scale)]
        if classes is not None:
            alphabets.append((torch.as_tensor(classes, dtype=torch.long), class_scale, class_pair_scale))
        self.terms: list[_Terms] = []
        scales = [torch.tensor([bias_scale], dtype=torch.float64)]
        size = 1
        for symbol, unary, pair in alphabets:
            k = int(symbol.max()) + 1
            self.terms.append(_Terms(symbol, k, size + torch.arange(num_decisions) * k,
                                     size + num_decisions * k + torch.arange(len(pairs)) * k**2, unary, pair))
            scales += [torch.full((num_decisions * k,), unary, dtype=torch.float64),
                       torch.full((len(pairs) * k**2,), pair, dtype=torch.float64)]
            size += num_decisions * k + len(pairs) * k**2
        self.weight_scale = torch.cat(scales)
        self.archs = self.target = self.cholesky = None  # set by fit

    def feature(self, archs: torch.Tensor) -> torch.Tensor:
        """The proxies of cells ``archs`` (N, D): (N, F), one column a proxy."""
        values = self._feature(archs)
        return values[:, None] if values.dim() == 1 else values

    def active(self, archs: torch.Tensor) -> torch.Tensor:
        """Indices of the weights a cell's score sums, ``(N, D) -> (N, 1 + A (D + D(D-1)/2))``."""
        columns = [torch.zeros(len(archs), 1, dtype=torch.long)]
        for t in self.terms:
            s = t.symbol[self.decision, archs]
            columns += [t.unary_offset + s, t.pair_offset + s[:, self.left] * t.size + s[:, self.right]]
        return torch.cat(columns, 1)

    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Prior covariance of the scores of cells ``a`` (N, D) and ``b`` (M, D): (N, M)."""
        k = self.bias_scale**2
        for t in self.terms:
            m = (t.symbol[self.decision, a][:, None, :] == t.symbol[self.decision, b][None, :, :]).sum(-1).double()
            k = k + t.unary_scale**2 * m + t.pair_scale**2 * m * (m - 1) / 2
        return k + self.feature_scale**2 * self.feature(a) @ self.feature(b).T

    def fit(self, archs: torch.Tensor, scores: torch.Tensor) -> None:
        """Condition on the cells evaluated (N, D) and their scores (N,)."""
        self.archs = archs.long()
        y = scores.double()
        self.target = (y - y.mean()) / y.std().clamp_min(1e-8) if len(y) > 1 else y - y.mean()
        eye = torch.eye(len(archs), dtype=torch.float64)
        self.cholesky = torch.linalg.cholesky(self.kernel(self.archs, self.archs) + self.noise**2 * eye)

    def _solve(self, rhs: torch.Tensor) -> torch.Tensor:
        return torch.cholesky_solve(rhs, self.cholesky)

    def predict(self, archs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and standard deviation of the noise-free score, standardised units."""
        cross = self.kernel(archs.long(), self.archs)
        mean = cross @ self._solve(self.target[:, None])[:, 0]
        d = archs.shape[1]
        prior = self.bias_scale**2  # k(a, a): every decision shared
        for t in self.terms:
            prior = prior + t.unary_scale**2 * d + t.pair_scale**2 * d * (d - 1) / 2
        prior = prior + self.feature_scale**2 * (self.feature(archs.long()) ** 2).sum(1)
        var = prior - (cross * self._solve(cross.T).T).sum(1)
        return mean, var.clamp_min(0).sqrt()

    def draw(self, generator: torch.Generator, samples: int = 1, temperature: float = 1.0) -> torch.Tensor:
        """Weights (weights, samples) of posterior draws by Matheron's rule,
        ``f = f0 + k(., X) (K + s^2 I)^-1 (y - f0(X) - e)``; it is linear in ``(f0, e)``, so
        ``temperature`` scales the distance from the mean (1: a posterior draw, 0: the mean)."""
        scale = self.weight_scale[:, None]
        w0 = temperature * scale * torch.randn(len(scale), samples, generator=generator, dtype=torch.float64)
        seen = self.active(self.archs)
        noise = temperature * self.noise * torch.randn(len(seen), samples, generator=generator, dtype=torch.float64)
        fx = self.feature(self.archs)  # (N, F)
        v0 = temperature * self.feature_scale * torch.randn(fx.shape[1], samples, generator=generator,
                                                            dtype=torch.float64)
        alpha = self._solve(self.target[:, None] - w0[seen].sum(1) - fx @ v0 - noise)
        phi_alpha = torch.zeros_like(w0).index_add_(0, seen.reshape(-1), alpha.repeat_interleave(seen.shape[1], 0))
        return torch.cat([w0 + scale**2 * phi_alpha, v0 + self.feature_scale**2 * fx.T @ alpha])

    def evaluate(self, weights: torch.Tensor, archs: torch.Tensor) -> torch.Tensor:
        """The drawn functions' scores of cells ``archs`` (N, D): (N, samples)."""
        f = self.feature(archs.long())
        return weights[:-f.shape[1]][self.active(archs.long())].sum(1) + f @ weights[-f.shape[1]:]
