"""A Gaussian process over mixed decisions: values in [0, 1] and categorical choices.

    k(a, b) = s^2 * exp(-sum_c theta_c [a_c != b_c]) * matern52(r),
    r^2 = sum_v ((a_v - b_v) / l_v)^2,

an exponentiated Hamming kernel on the choices (each its own weight ``theta_c``) times a
Matern-5/2 kernel with a lengthscale per value (ARD), the product so that a value's effect
may depend on the choices (a momentum matters under SGD, not under Adam). Targets are
ranked and mapped to normal quantiles before fitting: Bayesmark's losses have long tails
(a diverged model's log-loss), and a quantile target keeps one outlier from flattening the
rest. The hyperparameters (log lengthscales, log weights, log signal and noise) maximise
the marginal likelihood plus log-normal priors, by L-BFGS from the last fit.

The acquisition is the upper confidence bound on the posterior of the quantile target,
maximised by the planner over sampled and locally refined candidates (agents/planner.py);
expected improvement and Thompson sampling were measured against it (docs/benchmarks.md,
"Hyperparameters on Bayesmark").
"""

from __future__ import annotations

import math

import torch

SQRT5 = math.sqrt(5.0)


class MixedGP:
    """Exact GP regression on decisions (N, D): ``is_value[d]`` marks the columns in [0, 1]."""

    def __init__(self, is_value: list[bool], fit_steps: int = 50):
        self.values = torch.tensor(is_value, dtype=torch.bool)
        self.fit_steps = fit_steps
        dims = len(is_value)
        # log lengthscales (values), log Hamming weights (choices), log signal sd, log noise sd
        self.log_length = torch.full((int(self.values.sum()),), math.log(0.5), dtype=torch.float64)
        self.log_weight = torch.full((dims - int(self.values.sum()),), math.log(0.5), dtype=torch.float64)
        self.log_signal = torch.tensor(0.0, dtype=torch.float64)
        self.log_noise = torch.tensor(math.log(0.1), dtype=torch.float64)
        self.x = self.target = self.cholesky = self.alpha = None  # set by fit

    def kernel(self, a: torch.Tensor, b: torch.Tensor, log_length: torch.Tensor | None = None,
               log_weight: torch.Tensor | None = None, log_signal: torch.Tensor | None = None) -> torch.Tensor:
        """Prior covariance (N, M) of decisions ``a`` (N, D) and ``b`` (M, D)."""
        log_length = self.log_length if log_length is None else log_length
        log_weight = self.log_weight if log_weight is None else log_weight
        log_signal = self.log_signal if log_signal is None else log_signal
        av, bv = a[:, self.values], b[:, self.values]
        diff = (av[:, None, :] - bv[None, :, :]) / log_length.exp()
        r = (diff.square().sum(-1) + 1e-12).sqrt()
        matern = (1 + SQRT5 * r + 5.0 / 3.0 * r.square()) * torch.exp(-SQRT5 * r)
        ac, bc = a[:, ~self.values], b[:, ~self.values]
        hamming = ((ac[:, None, :] != bc[None, :, :]).double() * log_weight.exp()).sum(-1)
        return (2 * log_signal).exp() * torch.exp(-hamming) * matern

    def fit(self, x: torch.Tensor, scores: torch.Tensor) -> None:
        """Condition on decisions ``x`` (N, D) and their scores (N,): hyperparameters, then posterior."""
        self.x = x.double()
        rank = scores.double().argsort().argsort().double()
        self.target = torch.special.ndtri((rank + 0.5) / len(rank))  # normal quantiles of the ranks
        params = [p.clone().requires_grad_(True) for p in (self.log_length, self.log_weight, self.log_signal,
                                                           self.log_noise)]
        if self.fit_steps and len(x) > 1:
            optimizer = torch.optim.LBFGS(params, lr=0.5, max_iter=self.fit_steps, line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                optimizer.zero_grad()
                loss = self._neg_log_posterior(*params)
                loss.backward()
                return loss

            try:
                optimizer.step(closure)
            except RuntimeError:  # a step to a singular matrix: keep the last good hyperparameters
                params = [self.log_length, self.log_weight, self.log_signal, self.log_noise]
            if all(torch.isfinite(p).all() for p in params):
                self.log_length, self.log_weight, self.log_signal, self.log_noise = (
                    p.detach().clamp(-6, 4) for p in params)
        self.cholesky = self._cholesky(self.log_length, self.log_weight, self.log_signal, self.log_noise)
        self.alpha = torch.cholesky_solve(self.target[:, None], self.cholesky)

    def _cholesky(self, log_length, log_weight, log_signal, log_noise) -> torch.Tensor:
        k = self.kernel(self.x, self.x, log_length, log_weight, log_signal)
        eye = torch.eye(len(self.x), dtype=torch.float64)
        return torch.linalg.cholesky(k + ((2 * log_noise).exp() + 1e-6) * eye)

    def _neg_log_posterior(self, log_length, log_weight, log_signal, log_noise) -> torch.Tensor:
        """-log p(y | hyperparameters) - log prior, per point."""
        chol = self._cholesky(log_length, log_weight, log_signal, log_noise)
        alpha = torch.cholesky_solve(self.target[:, None], chol)
        nll = 0.5 * (self.target[:, None] * alpha).sum() + chol.diagonal().log().sum()
        prior = (0.5 * ((log_length - math.log(0.5)) / 1.0).square().sum()  # lengthscales around 0.5 of [0, 1]
                 + 0.5 * ((log_weight - math.log(0.5)) / 1.0).square().sum()
                 + 0.5 * (log_signal / 1.0).square() + 0.5 * ((log_noise - math.log(0.1)) / 1.0).square())
        return (nll + prior) / len(self.x)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and standard deviation of the noise-free target at ``x`` (N, D)."""
        cross = self.kernel(x.double(), self.x)
        mean = (cross @ self.alpha)[:, 0]
        v = torch.cholesky_solve(cross.T, self.cholesky)
        var = (2 * self.log_signal).exp() - (cross * v.T).sum(1)
        return mean, var.clamp_min(1e-12).sqrt()

    def upper_confidence_bound(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        """``m(x) + beta s(x)`` (Srinivas et al. 2010): optimism in the face of uncertainty."""
        mean, sd = self.predict(x)
        return mean + beta * sd

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The hyperparameters, where the next fit starts from (a resumed search fits as an unbroken one)."""
        return {"log_length": self.log_length, "log_weight": self.log_weight, "log_signal": self.log_signal,
                "log_noise": self.log_noise}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.log_length, self.log_weight = state["log_length"], state["log_weight"]
        self.log_signal, self.log_noise = state["log_signal"], state["log_noise"]
