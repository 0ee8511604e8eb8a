"""Architecture weights from logits ``(..., n_ops)``: the relaxations of one-shot NAS.

* ``softmax``: DARTS (Liu et al. 2019).
* ``gumbel``: a relaxed Gumbel-softmax sample, SNAS (Xie et al. 2019).
* ``gumbel_hard``: its straight-through form, GDAS (Dong & Yang 2019): one path forward.
* ``sparsemax`` (Martins & Astudillo 2016), ``entmax15`` (Peters et al. 2019): projections
  onto the simplex, exactly zero for weak ops, as closed forms whose autograd Jacobians
  are exact.

Gumbel noise comes from a CPU generator, so a seeded search draws the same on any device.
"""

from __future__ import annotations

import torch

RELAXATIONS = ("softmax", "gumbel", "gumbel_hard", "sparsemax", "entmax15")
STOCHASTIC = ("gumbel", "gumbel_hard")


def sparsemax(logits: torch.Tensor) -> torch.Tensor:
    """argmin_p ||p - z||^2 over the simplex: p = max(z - tau, 0), where the support is the
    largest k with 1 + k z_(k) > sum_{j <= k} z_(j) (z sorted decreasing) and
    tau = (sum of the support's z - 1) / k."""
    z, _ = logits.sort(dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    cumsum = z.cumsum(-1)
    support = (1 + k * z > cumsum).sum(-1, keepdim=True)  # the condition holds for a prefix
    tau = (cumsum.gather(-1, support - 1) - 1) / support.to(z.dtype)
    return (logits - tau).clamp(min=0)


def entmax15(logits: torch.Tensor) -> torch.Tensor:
    """1.5-entmax: p = max(z / 2 - tau, 0) ** 2 with tau such that p sums to one.

    With the support the k largest, the condition is the quadratic
    sum_{i <= k} (z_(i) / 2 - tau) ** 2 = 1, whose smaller root is
    tau_k = mean_k - sqrt((1 - k (meansq_k - mean_k ** 2)) / k). The support is the largest
    k with tau_k <= z_(k) / 2 (Peters et al. 2019, Algorithm 2)."""
    z, _ = (logits / 2).sort(dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    mean = z.cumsum(-1) / k
    mean_sq = (z**2).cumsum(-1) / k
    delta = ((1 - k * (mean_sq - mean**2)) / k).clamp(min=0)
    tau = mean - delta.sqrt()
    support = (tau <= z).sum(-1, keepdim=True)
    return (logits / 2 - tau.gather(-1, support - 1)).clamp(min=0) ** 2


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool, generator: torch.Generator) -> torch.Tensor:
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1); with ``hard``, the one-hot of its
    argmax whose gradient is the soft sample's (y_hard - y.detach() + y)."""
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).to(logits.device)
    gumbels = -torch.log(-torch.log(uniform.clamp(min=torch.finfo(logits.dtype).tiny)))
    soft = ((logits + gumbels) / tau).softmax(-1)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return one_hot - soft.detach() + soft


def relax(logits: torch.Tensor, relaxation: str, tau: float = 1.0,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Weights by ``relaxation``; the Gumbel ones need ``tau`` and a ``generator``."""
    if relaxation == "softmax":
        return logits.softmax(-1)
    if relaxation == "sparsemax":
        return sparsemax(logits)
    if relaxation == "entmax15":
        return entmax15(logits)
    if relaxation in STOCHASTIC:
        if generator is None:
            raise ValueError(f"relaxation {relaxation!r} samples Gumbel noise: pass a generator")
        return gumbel_softmax(logits, tau, relaxation == "gumbel_hard", generator)
    raise ValueError(f"unknown relaxation {relaxation!r}; choose one of {', '.join(RELAXATIONS)}")


def expected(logits: torch.Tensor, relaxation: str) -> torch.Tensor:
    """The weights without noise: what cells are derived from and entropy measured on."""
    return relax(logits, "softmax" if relaxation in STOCHASTIC else relaxation)
