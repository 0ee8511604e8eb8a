"""Accuracy against cost: the non-dominated set of what a search evaluated, and its hypervolume.

Score is maximised, cost (any metric an evaluator reports) minimised; the front is what
nothing dominates. Its hypervolume is the area it dominates inside the box whose worst
corner is the reference ``(score, cost)``: it compares runs only for the same reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Point = tuple[float, float]  # (score, cost)


def pareto_front(points: Iterable[Point]) -> list[Point]:
    """The non-dominated points, by cost ascending (so score ascending too); repeats kept once."""
    front: list[Point] = []
    for score, cost in sorted(set(points), key=lambda p: (p[1], -p[0])):
        if not front or score > front[-1][0]:
            front.append((score, cost))
    return front


def hypervolume(front: Sequence[Point], reference: Point) -> float:
    """Area dominated by ``front`` and dominating ``reference``: walking by cost ascending,
    each point adds the strip above the previous score, from its cost to the reference's."""
    ref_score, ref_cost = reference
    area, floor = 0.0, ref_score
    for score, cost in pareto_front(front):
        if cost < ref_cost and score > floor:
            area += (score - floor) * (ref_cost - cost)
            floor = score
    return area


class ParetoArchive:
    """The front as a search goes; without a ``reference``, from score 0 and the costliest cost."""

    def __init__(self, cost: str, reference: Point | None = None):
        self.cost, self.given_reference = cost, reference
        self.costliest: float | None = None
        self._archs: dict[Point, str] = {}

    def add(self, arch: str, score: float, metrics: dict) -> bool:
        """Offer one evaluation; True when it joined the front."""
        if self.cost not in metrics or "failed" in metrics:
            return False
        point = (float(score), metrics[self.cost])
        self.costliest = point[1] if self.costliest is None else max(self.costliest, point[1])
        front = pareto_front([*self._archs, point])
        if point not in front or point in self._archs:
            return False
        self._archs = {p: self._archs.get(p, arch) for p in front}
        return True

    @property
    def front(self) -> list[dict]:
        return [{"arch": arch, "score": score, self.cost: cost}
                for (score, cost), arch in sorted(self._archs.items(), key=lambda item: item[0][1])]

    @property
    def reference(self) -> Point | None:
        if self.given_reference is not None:
            return self.given_reference
        return None if self.costliest is None else (0.0, self.costliest)

    @property
    def hypervolume(self) -> float:
        return 0.0 if self.reference is None else hypervolume(list(self._archs), self.reference)

    def report(self) -> dict:
        return {"cost": self.cost, "reference": self.reference, "hypervolume": self.hypervolume, "front": self.front}
