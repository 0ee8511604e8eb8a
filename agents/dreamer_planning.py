"""How Dreamer plans a NAS episode's cell in its world model, as the planner plans in its
Gaussian process: one reward head drawn per episode scores the actor's imagined cells and
the best cells' neighbours, filtered through the model as their episodes would go; on
NB201 the prefill is the planner's design and a finished cell's observation holds what is
known of it before it is paid for (:mod:`rlnas.agents.priors`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlnas.agents.priors import choice_classes, nb201_proxy_columns, spread_design
from rlnas.spaces import Decisions, NB201Space
from rlnas.world_models.rssm import State, straight_through_onehot


class CellPlanning:
    """Dreamer's planning part: it reads the agent's config, world model, actor, random
    generators and ``seen`` cells."""

    EPISODES_KEPT = 20_000  # cells whose planning episodes are remembered (NB201 has 15,625)

    def _cell_prior(self, space: Any) -> None:
        """What NB201 tells of a cell before it is paid for (``cell_prior``: its proxies and op
        classes, as extra observation slots; ``design_spread``: the prefill's cells), and
        whether episodes are planned (``candidates``, on a NAS env of choices)."""
        hp, nb201 = self.config, isinstance(space, NB201Space)
        self.plans = hp.candidates > 0 and space is not None and not self.head.values
        self.proxies = self.design = None
        self.extra_size = self.action_extra = 0
        if nb201 and hp.cell_prior:
            self.proxies = torch.stack(nb201_proxy_columns(space), 1).numpy().astype(np.float32)
            classes = np.array(choice_classes(space))  # (D, K) class ids
            self.class_onehot = np.eye(classes.max() + 1, dtype=np.float32)[classes]  # (D, K, C)
            self.radix = space.max_choices ** np.arange(space.num_decisions - 1, -1, -1)
            self.extra_size = self.proxies.shape[1] + self.class_onehot[:, 0].size
            self.action_extra = self.extra_size if hp.prior_in_action else 0
        if nb201 and hp.design_spread > 0:
            cells, synflow = torch.tensor(space.all_cells()), nb201_proxy_columns(space)[0]
            self.design = spread_design(cells, synflow, -(-hp.prefill // space.num_decisions), hp.design_spread)

    def _observation(self, obs: np.ndarray) -> np.ndarray:
        """The env's observation, and with ``cell_prior`` the extra slots: zeros until the
        cell is finished (the NASEnv cursor's last slot), then its proxies and op classes."""
        if self.proxies is None:
            return obs
        n, k = self.class_onehot.shape[:2]
        if obs[n * k + n] != 1.0:  # unfinished (5 steps in 6): zeros, without reading the cell
            return np.concatenate([obs, np.zeros(self.extra_size, np.float32)])
        return np.concatenate([obs, self._prior_of(self._cells_of(obs[None])[0])[0]])

    def _prior_of(self, cells: np.ndarray) -> np.ndarray:
        """Finished cells' ``(N, D)`` prior slots ``(N, extra_size)``: proxies, then op classes."""
        n = cells.shape[1]
        classes = self.class_onehot[np.arange(n), cells].reshape(len(cells), -1)
        return np.concatenate([self.proxies[cells @ self.radix], classes], 1).astype(np.float32)

    def _reached(self, action: np.ndarray | None, obs: np.ndarray) -> np.ndarray | None:
        """With ``prior_in_action``, the action that finishes a cell carries the prior slots of
        the observation it leads to (zeros before): into the RSSM's deterministic path, which
        V2's discrete latents are not (a cell's proxies are continuous). None: no action yet."""
        if action is not None and self.action_extra:
            action = action.copy()
            action[-self.action_extra:] = obs[-self.extra_size:]
        return action

    def _imagined_prior(self, action: torch.Tensor, cells: torch.Tensor,
                        position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cells ``(N, D)`` with an imagined choice taken at each one's ``position`` (its
        next decision), and the action with the prior slots ``_reached`` gives a real one."""
        n, rows = cells.shape[1], (position < cells.shape[1]).nonzero().squeeze(-1)
        cells = cells.clone()
        cells[rows, position[rows]] = action[rows, :self.num_actions].argmax(-1)
        if not self.action_extra:
            return action, cells
        extra = torch.zeros(len(action), self.action_extra, device=action.device)
        done = position == n - 1
        if done.any():
            extra[done] = torch.as_tensor(self._prior_of(cells[done].cpu().numpy()), device=action.device)
        return torch.cat([action, extra], -1), cells

    def _cells_of(self, obs: np.ndarray | torch.Tensor) -> tuple[Any, Any]:
        """The cell so far and the next decision's position (the NASEnv cursor), read from
        observations ``(N, ...)``, numpy's or torch's."""
        n, k = self.class_onehot.shape[:2]
        return obs[:, :n * k].reshape(-1, n, k).argmax(-1), obs[:, n * k:n * k + n + 1].argmax(-1)

    def _plan(self, obs: np.ndarray) -> Decisions | None:
        """The cell this episode builds, None for the actor's own actions: the design's next
        during the prefill, then (``candidates``) the best of the actor's imagined cells."""
        if self.steps < self.config.prefill:
            return next((c for c in self.design or () if self._unseen(c)), None)
        return self._imagined_best(obs) if self.plans else None

    def _unseen(self, cell: Decisions) -> bool:
        return cell not in self.seen and cell not in self.in_flight

    @torch.no_grad()
    def _imagined_best(self, obs: np.ndarray) -> Decisions | None:
        """Imagine ``candidates`` cells from the actor in the world model, score the unseen ones
        by one reward head drawn for this episode (Thompson sampling over the ensemble), then
        ``planning_rounds`` times add the unseen neighbours of the ``beam`` best: the actor
        says where to look, the model where to go. None if every candidate is seen."""
        hp, env, rssm = self.config, self.nas_env(), self.model.rssm
        start = self._filter(None, None, obs)
        state = State(*(x.expand(hp.candidates, *x.shape[1:]) for x in (start.deter, start.stoch, start.stats)))
        n = env.space.num_decisions
        cells = torch.zeros(hp.candidates, n, dtype=torch.long, device=self.device)
        for t in range(n):
            logits = self.actor(state.feature)
            legal = self.model.legal(state.feature)
            if legal is not None:
                logits = logits.masked_fill(~legal, -torch.inf)
            onehot = straight_through_onehot(logits, self.generator)
            action, cells = self._imagined_prior(onehot, cells, torch.full((hp.candidates,), t, device=self.device))
            state = rssm.img_step(state, action, self.generator)
        head = int(self.rng.integers(hp.reward_heads))
        best = sorted(self.seen, key=self.seen.__getitem__, reverse=True)[:hp.beam]
        near = [n for cell in best for n in env.space.neighbours(cell, self.rng)]
        scored = self._scored([c for c in dict.fromkeys([*map(tuple, cells.tolist()), *near])
                               if self._unseen(c)], head)
        for _ in range(hp.planning_rounds):
            leaders = sorted(scored, key=scored.__getitem__, reverse=True)[:hp.beam]
            near = dict.fromkeys(n for cell in leaders for n in env.space.neighbours(cell, self.rng))
            scored |= self._scored([n for n in near if n not in scored and self._unseen(n)], head)
        return max(scored, key=scored.__getitem__) if scored else None

    def _scored(self, cells: list[Decisions], head: int) -> dict[Decisions, float]:
        """Reward head ``head``'s score of each legal cell, filtered through the model as its
        episode would go (the observations are the env's previews)."""
        env = self.nas_env()
        n = env.space.num_decisions
        episodes = {c: e for c in cells if (e := self._episode_of(env, c)) is not None}
        if not episodes:
            return {}
        obs, actions = (torch.as_tensor(np.stack(x, 1), device=self.device)
                        for x in zip(*episodes.values(), strict=True))
        firsts = torch.zeros(n + 1, len(episodes), device=self.device)
        firsts[0] = 1.0
        post, _ = self.model.rssm.observe(self.model.encoder(obs), actions, firsts, generator=self.generator,
                                          sample=False)
        return dict(zip(episodes, self.model.reward_heads(post.feature[-1])[:, head].tolist(), strict=True))

    def _episode_of(self, env: Any, cell: Decisions) -> tuple[np.ndarray, np.ndarray] | None:
        """A cell's observations and actions ``(D + 1, ...)`` as its episode has them; None if
        illegal. Remembered: the planning rounds score the same neighbourhoods again and again."""
        if cell in self._episodes:
            return self._episodes[cell]
        observations, actions = [], [np.zeros(self.action_dim, np.float32)]
        for t in range(len(cell) + 1):
            obs, mask = env.preview(cell[:t])
            observations.append(self._observation(obs))
            if t > 0:
                actions[-1] = self._reached(actions[-1], observations[-1])
            if t < len(cell):
                if not mask[cell[t]]:
                    self._episodes[cell] = None
                    return None
                actions.append(self._vector(cell[t], mask))
        if len(self._episodes) >= self.EPISODES_KEPT:
            self._episodes.clear()
        self._episodes[cell] = (np.stack(observations), np.stack(actions))
        return self._episodes[cell]
