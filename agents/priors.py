"""What a search knows of a cell before paying for it, shared by the agents that plan:
each choice's class (none, parameter-free, convolution), NB201's data-free proxies as
ranks, and the first cells worth paying for (the initial design)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rlnas.networks.costs import nb201_costs
from rlnas.networks.ops import op_class
from rlnas.networks.proxies import nb201_synflow
from rlnas.spaces import Decisions, NB201Space, SearchSpace


def latin_hypercube(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Decisions]:
    """The Latin hypercube: every legal choice of a decision equally often, and each value
    once in each of ``n`` equal strata of [0, 1]."""
    cells: list[list[int | float]] = [[] for _ in range(n)]
    for step in range(space.num_decisions):
        order = rng.permutation(n)
        for cell, k in zip(cells, order, strict=True):
            if space.is_value(step):
                used = space.value_used(cell)
                cell.append(space.canonical_value(step, (int(k) + float(rng.random())) / n) if used else 0.0)
                continue
            legal = space.legal_choices(cell)
            cell.append(legal[int(k) % len(legal)])
    return list(dict.fromkeys(tuple(c) for c in cells))


def spread_design(cells: torch.Tensor, proxy: torch.Tensor, n: int, spread: int) -> list[Decisions]:
    """The ``n`` best ``cells`` (N, D) by ``proxy`` (N,) that lie at least ``spread`` decisions
    from each other, taken greedily in the proxy's order (ties in the cells' order). The
    proxy's best cell alone says little; its best cells spread apart ask which of the
    decisions it is sure about matter (docs/benchmarks.md, "The planner at 50 evaluations")."""
    chosen: list[torch.Tensor] = []
    for i in torch.argsort(-proxy, stable=True).tolist():
        if all(int((cells[i] != c).sum()) >= spread for c in chosen):
            chosen.append(cells[i])
            if len(chosen) == n:
                break
    return [tuple(c.tolist()) for c in chosen]


def choice_classes(space: SearchSpace) -> list[list[int]]:
    """Each decision's choices by class (D, max_choices): the space's own (a model space's
    candidates), an op's class, else the choice itself."""
    if hasattr(space, "choice_classes"):
        return space.choice_classes()
    ops = set(getattr(space, "ops", ()))
    rows = []
    for step in range(space.num_decisions):
        names = space.choice_names(step)
        rows.append([op_class(name) if name in ops else c for c, name in enumerate(names)]
                    + list(range(len(names), space.max_choices)))  # padding: choices no cell makes here
    return rows


def nb201_proxies(space: NB201Space, columns: list[tuple[torch.Tensor, float]]
                  ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Cells (N, D) -> their data-free proxies (N, P): each ``proxy_feature`` column times its
    prior scale (the GP's weights on the columns are then N(0, 1)); None if every scale is 0."""
    kept = [scale * column for column, scale in columns if scale > 0]
    if not kept:
        return None
    table = torch.stack(kept, 1)
    radix = space.max_choices ** torch.arange(space.num_decisions - 1, -1, -1)
    return lambda archs: table[(archs * radix).sum(1)]


def proxy_feature(space: NB201Space, values: dict[str, float]) -> torch.Tensor:
    """Every cell's proxy (cell k at index k, mixed-radix order) as its rank on normal quantiles:
    SynFlow spans 20 orders of magnitude with a long low tail, on which a linear term would
    spend itself. Ties (cells whose only differences are dead edges) share one rank."""
    cells = space.all_cells()
    _, tie, count = np.unique([values[space.to_string(c)] for c in cells], return_inverse=True, return_counts=True)
    rank = (np.cumsum(count) - (count + 1) / 2)[tie]
    return torch.special.ndtri(torch.from_numpy((rank + 0.5) / len(rank)))


def nb201_proxy_columns(space: NB201Space) -> tuple[torch.Tensor, torch.Tensor]:
    """SynFlow's and the parameter count's ``proxy_feature`` columns: every cell's two
    data-free scores (their tables ship), as ranks on normal quantiles."""
    return (proxy_feature(space, nb201_synflow()),
            proxy_feature(space, {arch: float(cost[0]) for arch, cost in nb201_costs().items()}))
