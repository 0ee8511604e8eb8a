"""The simple peers (local search, TPE) and the model-predictive planner."""

import numpy as np
import pytest
import torch

from rlnas.agents import make_agent
from rlnas.agents.priors import choice_classes, latin_hypercube, nb201_proxies, proxy_feature, spread_design
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.evaluators import CallableEvaluator
from rlnas.networks.costs import nb201_costs
from rlnas.networks.ops import op_class
from rlnas.networks.proxies import nb201_synflow
from rlnas.spaces import NASNetSpace, NB201Space
from rlnas.world_models.pairwise_gp import PairwiseGP

TARGET = (3, 1, 2, 0, 3, 2)


def matches(space, target=TARGET):
    """Score = fraction of decisions equal to ``target``'s: one optimum, no other local one."""
    return CallableEvaluator(space, lambda arch: float(np.mean(np.array(space.from_string(arch)) == target)))


@pytest.mark.parametrize("space", [NB201Space(), NASNetSpace()], ids=["nb201", "nasnet"])
def test_neighbours_are_every_cell_one_legal_decision_away(space):
    rng = np.random.default_rng(0)
    cell = space.sample(rng)
    found = space.neighbours(cell, rng)
    expected = sum(len(space.legal_choices(cell[:s])) - 1 for s in range(space.num_decisions))
    assert len(found) == len(set(found)) == expected
    for n in found:
        assert space.validate(n) == n and sum(a != b for a, b in zip(n, cell, strict=True)) == 1
    assert space.neighbours(cell, np.random.default_rng(1)) != found  # a random order
    if isinstance(space, NB201Space):
        assert expected == 6 * 4


def test_local_search_climbs_to_the_first_better_neighbour():
    space = NB201Space()
    agent = make_agent("local_search", NASEnv(space, matches(space)), seed=0, n_init=5, preset=None)
    agent.learn(Budget(evaluations=200))
    evaluated = [space.from_string(e.arch) for e in agent.env.evaluations]
    scores = [e.score for e in agent.env.evaluations]
    assert TARGET in evaluated  # no other local optimum: it must get there, and then stop improving
    for i in range(5, evaluated.index(TARGET) + 1):
        incumbent = evaluated[int(np.argmax(scores[:i]))]
        assert sum(a != b for a, b in zip(evaluated[i], incumbent, strict=True)) == 1
    # each better neighbour is taken at once: at most 4 * 6 tries per step up
    assert evaluated.index(TARGET) < 5 + 24 * round(6 * (1 - max(scores[:5])))
    assert len(set(evaluated)) == len(evaluated)


def test_local_search_restarts_at_a_local_optimum():
    space = NASNetSpace(num_blocks=1, ops=["identity"])  # 64 cells, a flat objective: each a local optimum
    agent = make_agent("local_search", NASEnv(space, CallableEvaluator(space, lambda arch: 0.5)), seed=0, n_init=3,
                       preset=None)
    agent.learn(Budget(evaluations=64))
    assert len({e.arch for e in agent.env.evaluations}) == 64  # walked, restarted, and exhausted the space
    assert agent.propose() is None


@pytest.mark.parametrize("name", ["local_search", "tpe", "planner"])
def test_masks_honoured_on_nasnet(name):
    space = NASNetSpace()
    env = NASEnv(space, CallableEvaluator(space, lambda arch: float(len(arch) % 7) / 7))  # raises on illegal
    agent = make_agent(name, env, seed=0, preset=None)
    agent.learn(Budget(evaluations=15))
    archs = [e.arch for e in agent.env.evaluations]
    assert len(archs) == len(set(archs)) == 15
    assert all(space.to_string(space.from_string(a)) == a for a in archs)


def test_tpe_asks_one_categorical_per_decision_over_the_legal_choices():
    space = NASNetSpace()
    agent = make_agent("tpe", NASEnv(space, matches(space, target=(0,) * space.num_decisions)), seed=0, preset=None)
    agent.learn(Budget(evaluations=12))
    trial = agent.study.trials[-1]
    assert len(trial.params) == space.num_decisions
    for step, (name, dist) in enumerate(trial.distributions.items()):
        assert name.startswith(f"{step}:") and list(dist.choices) == list(space.legal_choices([0] * step))


def test_tpe_beats_random_on_average():
    space = NB201Space()
    best = {name: np.mean([max(e.score for e in make_agent(name, NASEnv(space, matches(space)), seed=s, preset=None)
                                .learn(Budget(evaluations=40)).env.evaluations) for s in range(3)])
            for name in ("tpe", "random")}
    assert best["tpe"] > best["random"]


def test_pairwise_gp_kernel_is_the_inner_product_of_its_features():
    gp = PairwiseGP(4, 3, bias_scale=0.5, unary_scale=2.0, pair_scale=0.3)
    a, b = torch.tensor([[0, 1, 2, 1]]), torch.tensor([[0, 1, 2, 0]])  # 3 decisions shared, so 3 pairs
    assert gp.kernel(a, b).item() == pytest.approx(0.5**2 + 2.0**2 * 3 + 0.3**2 * 3)
    phi = torch.zeros(2, len(gp.weight_scale), dtype=torch.float64)
    phi.scatter_(1, gp.active(torch.cat([a, b])), 1.0)
    assert gp.kernel(a, b).item() == pytest.approx(float((phi[0] * gp.weight_scale**2) @ phi[1]))


def test_pairwise_gp_posterior_by_hand():
    # one decision of two choices, scale 1 everywhere: k(a, a') = 1 + [a = a'] (no pairs)
    gp = PairwiseGP(1, 2, noise=1.0)
    gp.fit(torch.tensor([[0], [1]]), torch.tensor([1.0, -1.0]))  # standardised: +-1/sqrt(2)
    # K + I = [[3, 1], [1, 3]]; k(0, X) = [2, 1]; mean = [2, 1] (K + I)^-1 y = 1/(2 sqrt 2)
    # var = 2 - [2, 1] (K + I)^-1 [2, 1]^T = 2 - 11/8
    mean, std = gp.predict(torch.tensor([[0]]))
    assert mean.item() == pytest.approx(1 / (2 * 2**0.5))
    assert std.item() == pytest.approx((2 - 11 / 8) ** 0.5)


def test_pairwise_gp_feature_adds_its_own_kernel_term():
    gp = PairwiseGP(4, 3, bias_scale=0.5, unary_scale=2.0, pair_scale=0.3,
                    feature=lambda archs: archs[:, 0].double() - 1.5, feature_scale=0.7)
    a, b = torch.tensor([[0, 1, 2, 1]]), torch.tensor([[2, 1, 2, 1]])  # 3 shared; features -1.5 and 0.5
    assert gp.kernel(a, b).item() == pytest.approx(0.5**2 + 2.0**2 * 3 + 0.3**2 * 3 + 0.7**2 * -1.5 * 0.5)


def test_pairwise_gp_weighs_several_features_each_with_its_own_weight():
    gp = PairwiseGP(4, 3, bias_scale=0.5, unary_scale=2.0, pair_scale=0.3, feature_scale=0.7,
                    feature=lambda archs: torch.stack([archs[:, 0].double() - 1.5, archs[:, 1].double()], 1))
    a, b = torch.tensor([[0, 1, 2, 1]]), torch.tensor([[2, 1, 2, 1]])  # features (-1.5, 1) and (0.5, 1)
    assert gp.kernel(a, b).item() == pytest.approx(0.5**2 + 2.0**2 * 3 + 0.3**2 * 3 + 0.7**2 * (-1.5 * 0.5 + 1 * 1))
    gp.fit(torch.cat([a, b]), torch.tensor([0.3, 1.2]))
    weights = gp.draw(torch.Generator().manual_seed(0), samples=3)
    assert weights.shape == (len(gp.weight_scale) + 2, 3)  # a weight per feature after the decisions' weights
    scores = gp.evaluate(weights, a)[0]
    by_hand = weights[:-2][gp.active(a)[0]].sum(0) + (-1.5) * weights[-2] + 1.0 * weights[-1]
    assert torch.allclose(scores, by_hand)


def test_pairwise_gp_classes_add_the_same_terms_on_the_classes():
    # choice 0 is class 0, choices 1 and 2 are class 1, on every decision
    gp = PairwiseGP(3, 3, bias_scale=0.5, unary_scale=2.0, pair_scale=0.3,
                    classes=[[0, 1, 1]] * 3, class_scale=0.7, class_pair_scale=0.2)
    a, b = torch.tensor([[0, 1, 2]]), torch.tensor([[0, 2, 1]])  # 1 choice shared (no pair); 3 classes (3 pairs)
    assert gp.kernel(a, b).item() == pytest.approx(0.5**2 + 2.0**2 * 1 + 0.7**2 * 3 + 0.2**2 * 3)
    phi = torch.zeros(2, len(gp.weight_scale), dtype=torch.float64)
    phi.scatter_(1, gp.active(torch.cat([a, b])), 1.0)
    assert gp.kernel(a, b).item() == pytest.approx(float((phi[0] * gp.weight_scale**2) @ phi[1]))
    assert gp.kernel(a, a).item() == pytest.approx(0.5**2 + (2.0**2 + 0.7**2) * 3 + (0.3**2 + 0.2**2) * 3)


def test_choice_classes_are_op_classes_where_a_decision_picks_an_op():
    assert [op_class(op) for op in ("none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "sep_conv_5x5")] \
        == [0, 1, 1, 2, 2]
    nb201 = NB201Space()
    assert choice_classes(nb201) == [[op_class(op) for op in nb201.ops]] * 6 == [[0, 1, 2, 2, 1]] * 6
    nasnet = NASNetSpace(num_blocks=2, ops=["identity", "sep_conv_3x3", "max_pool_3x3"])
    classes = choice_classes(nasnet)
    assert len(classes) == nasnet.num_decisions and {len(row) for row in classes} == {nasnet.max_choices}
    assert nasnet.max_choices == 3
    assert classes[:5] == [[0, 1, 2], [0, 1, 2],  # inputs: their own class
                           [1, 2, 1], [1, 2, 1],  # ops
                           [0, 1, 2]]  # combination (padded)


def a_feature(archs: torch.Tensor) -> torch.Tensor:
    """A feature no sum of decisions and pairs can express."""
    return torch.sin(archs.double() @ torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0, 11.0], dtype=torch.float64))


def fitted_gp(seed: int, feature=None, classes=None) -> tuple[PairwiseGP, torch.Tensor, torch.Generator]:
    """An NB201-sized GP fitted to 25 random cells with random scores, 15 more cells to score."""
    gp = PairwiseGP(6, 5, feature=feature, feature_scale=1.5 if feature else 0.0,
                    classes=classes, class_scale=0.8, class_pair_scale=0.2)
    gen = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, 5, (40, 6), generator=gen)
    gp.fit(cells[:25], torch.randn(25, generator=gen, dtype=torch.float64))
    return gp, cells, gen


def two_features(archs: torch.Tensor) -> torch.Tensor:
    return torch.stack([a_feature(archs), torch.cos(archs.double().sum(1))], 1)


@pytest.mark.parametrize(("feature", "classes"), [(None, None), (a_feature, None), (two_features, None),
                                                  (None, [[0, 1, 2, 2, 1]] * 6)],
                         ids=["decisions", "with_feature", "with_two_features", "with_classes"])
def test_pairwise_gp_draws_have_the_posterior_mean_and_spread(feature, classes):
    gp, cells, gen = fitted_gp(0, feature, classes)
    mean, std = gp.predict(cells)
    draws = gp.evaluate(gp.draw(gen, samples=20000), cells)  # Matheron's rule, in weight space
    assert torch.allclose(draws.mean(1), mean, atol=4 * std.max().item() / 20000**0.5)
    assert torch.allclose(draws.std(1), std, rtol=0.05)
    assert std[:25].max() < std[25:].min()  # surer on the data than off it


@pytest.mark.parametrize("feature", [None, a_feature], ids=["decisions", "with_feature"])
def test_pairwise_gp_temperature_scales_a_draw_about_the_posterior_mean(feature):
    gp, cells, gen = fitted_gp(1, feature)
    mean, _ = gp.predict(cells)
    assert torch.allclose(gp.evaluate(gp.draw(gen, temperature=0.0), cells)[:, 0], mean)
    full, half = (gp.evaluate(gp.draw(torch.Generator().manual_seed(2), temperature=t), cells)[:, 0]
                  for t in (1.0, 0.5))  # the same random numbers, so the same deviation, halved
    assert torch.allclose(half - mean, 0.5 * (full - mean))


@pytest.mark.parametrize("space", [NB201Space(), NASNetSpace(num_blocks=2)], ids=["nb201", "nasnet"])
def test_latin_hypercube_balances_every_decision(space):
    cells = latin_hypercube(space, 10, np.random.default_rng(0))
    assert len(cells) == 10 and all(space.validate(c) == c for c in cells)
    for step in range(space.num_decisions):
        counts = np.bincount([c[step] for c in cells], minlength=len(space.legal_choices(cells[0][:step])))
        assert counts.max() - counts.min() <= 1  # each legal choice equally often, up to one


def test_the_spread_design_takes_the_proxys_best_cells_at_least_spread_apart():
    cells = torch.tensor([[0, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 1, 1], [1, 0, 1]])
    proxy = torch.tensor([5.0, 4.0, 3.0, 3.0, 2.0, 1.0])
    # 000; 001 is one decision from it; 110 two; 011 two from both; 111 one from 110 and from 011
    assert spread_design(cells, proxy, 3, 2) == [(0, 0, 0), (1, 1, 0), (0, 1, 1)]
    assert spread_design(cells, proxy, 2, 3) == [(0, 0, 0), (1, 1, 1)]
    assert spread_design(cells, proxy, 10, 3) == [(0, 0, 0), (1, 1, 1)]  # fewer when the space runs out
    assert spread_design(cells, proxy, 4, 1) == [(0, 0, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1)]


def test_the_planner_starts_nb201_from_synflows_best_cells_spread_apart():
    space = NB201Space()
    agent = make_agent("planner", NASEnv(space, matches(space)), seed=0)
    cells = torch.tensor(space.all_cells())
    best = int(torch.argmax(proxy_feature(space, nb201_synflow())))
    design = torch.tensor(agent.design)
    assert len(design) == agent.config.n_init and tuple(design[0].tolist()) == tuple(cells[best].tolist())
    apart = (design[:, None, :] != design[None, :, :]).sum(-1)
    assert (apart + 99 * torch.eye(len(design), dtype=torch.long) >= agent.config.design_spread).all()
    latin = make_agent("planner", NASEnv(space, matches(space)), seed=0, design_spread=0)  # every op twice an edge
    assert all(np.bincount(column, minlength=5).tolist() == [2] * 5 for column in np.array(latin.design).T)


def test_all_cells_enumerates_the_space():
    space = NASNetSpace(num_blocks=1, ops=["identity", "max_pool_3x3"])
    cells = space.all_cells()
    assert len(cells) == len(set(cells)) == space.size
    assert all(space.validate(c) == c for c in cells)


def test_planner_finds_the_optimum_of_an_additive_objective():
    space = NB201Space()
    for seed in range(2):
        agent = make_agent("planner", NASEnv(space, matches(space)), seed=seed, preset=None)
        agent.learn(Budget(evaluations=60))
        assert max(e.score for e in agent.env.evaluations) == 1.0


def test_planner_proxies_are_synflow_and_parameter_ranks_on_normal_quantiles_each_scaled():
    space = NB201Space()
    cells = space.all_cells()
    synflow = proxy_feature(space, nb201_synflow())
    params = proxy_feature(space, {a: float(cost[0]) for a, cost in nb201_costs().items()})
    proxies = nb201_proxies(space, [(synflow, 1.0), (params, 0.5)])(torch.tensor(cells)).numpy()
    assert proxies.shape == (len(cells), 2)
    for column, raw in ((proxies[:, 0], [nb201_synflow()[space.to_string(c)] for c in cells]),
                        (proxies[:, 1] / 0.5, [nb201_costs()[space.to_string(c)][0] for c in cells])):
        raw = np.array(raw)
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(column[order]) >= 0)  # the proxy's own order
        assert np.all(column[raw == raw[0]] == column[0])  # ties share one
        assert abs(column.mean()) < 0.01 and column.std() == pytest.approx(1.0, abs=0.03)  # ties pull a little
    # by hand: of the 15,625 cells, the all-none skeleton (73,306 parameters) has the fewest, tied with
    # every cell whose ops are none or parameter-free (3^6 = 729 of them): mean rank 364, quantile 364.5 / 15,625
    assert proxies[0, 1] / 0.5 == pytest.approx(float(torch.special.ndtri(torch.tensor(364.5 / 15625))))
    assert nb201_proxies(space, [(synflow, 0.0), (params, 0.0)]) is None
