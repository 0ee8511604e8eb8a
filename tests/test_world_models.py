"""The RSSM's pieces against hand-computed values, and Dreamer end to end on small tasks."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlnas.agents import make_agent
from rlnas.agents.dreamer import SequenceReplay, lambda_returns
from rlnas.agents.priors import nb201_proxy_columns, spread_design
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.evaluators import CallableEvaluator
from rlnas.spaces import NASNetSpace
from rlnas.world_models import RSSM, State, WorldModel, straight_through_onehot


def test_straight_through_gradient_is_the_gradient_through_the_probabilities():
    logits = torch.randn(4, 3, 5, requires_grad=True)
    weights = torch.randn(4, 3, 5)
    sample = straight_through_onehot(logits, torch.Generator().manual_seed(0))
    forward = sample.detach()  # one-hot, up to the rounding of probs - probs
    torch.testing.assert_close(forward, forward.round())
    torch.testing.assert_close(forward.round().sum(-1), torch.ones(4, 3))
    (grad_st,) = torch.autograd.grad((weights * sample).sum(), logits)
    (grad_probs,) = torch.autograd.grad((weights * logits.softmax(-1)).sum(), logits)
    torch.testing.assert_close(grad_st, grad_probs)


def test_straight_through_samples_follow_the_probabilities_and_masks():
    logits = torch.tensor([0.0, np.log(3.0), -1e9]).expand(20_000, 3)
    counts = straight_through_onehot(logits, torch.Generator().manual_seed(0)).detach().round().sum(0)
    assert counts[2] == 0  # a masked action is never drawn
    assert counts[1] / counts.sum() == pytest.approx(0.75, abs=0.01)


def categorical_states(post_logits, prior_logits):
    zeros = torch.zeros(post_logits.shape[0], 1)
    return State(zeros, zeros, post_logits), State(zeros, zeros, prior_logits)


def test_kl_balancing_splits_the_gradient_alpha_to_the_prior():
    rssm = RSSM(2, 4, deter_size=8, hidden_size=8, latent="categorical", stoch_size=3, classes=4)
    torch.manual_seed(0)
    post_logits = torch.randn(6, 3, 4, requires_grad=True)
    prior_logits = torch.randn(6, 3, 4, requires_grad=True)
    post, prior = categorical_states(post_logits, prior_logits)
    loss, value = rssm.kl_loss(post, prior, balance=0.8, free_nats=0.0)
    g_post, g_prior = torch.autograd.grad(loss, (post_logits, prior_logits))
    plain = rssm.kl(post_logits, prior_logits).mean()
    p_post, p_prior = torch.autograd.grad(plain, (post_logits, prior_logits))
    torch.testing.assert_close(loss, value)  # the forward value is the KL itself
    torch.testing.assert_close(g_prior, 0.8 * p_prior)
    torch.testing.assert_close(g_post, 0.2 * p_post)
    # and the plain KL's gradient is the true one: central differences on one logit
    eps, index = 1e-6, (2, 1, 3)
    with torch.no_grad():  # in float64, so the difference quotient is exact enough
        post64, bumped = post_logits.double(), [prior_logits.double() for _ in range(2)]
        bumped[0][index] += eps
        bumped[1][index] -= eps
        numeric = (rssm.kl(post64, bumped[0]).mean() - rssm.kl(post64, bumped[1]).mean()) / (2 * eps)
    assert p_prior[index].item() == pytest.approx(numeric.item(), rel=1e-3)


def test_free_nats_clamp_the_mean_kl():
    rssm = RSSM(2, 4, deter_size=8, hidden_size=8, latent="categorical", stoch_size=3, classes=4)
    post_logits = torch.zeros(5, 3, 4, requires_grad=True)
    prior_logits = torch.full((5, 3, 4), 0.0).index_fill(-1, torch.tensor([0]), 0.3).requires_grad_(True)
    post, prior = categorical_states(post_logits, prior_logits)
    kl = rssm.kl(post_logits, prior_logits).mean().item()
    assert 0 < kl < 1.0
    for balance in (None, 0.8):
        loss, value = rssm.kl_loss(post, prior, balance, free_nats=1.0)
        assert loss.item() == pytest.approx(1.0) and value.item() == pytest.approx(kl)
        grads = torch.autograd.grad(loss, (post_logits, prior_logits))
        assert all(g.abs().max() == 0 for g in grads)  # below the free nats: no gradient
        loss, _ = rssm.kl_loss(post, prior, balance, free_nats=0.01)
        assert loss.item() == pytest.approx(kl, rel=1e-5)


def test_gaussian_kl_matches_torch():
    rssm = RSSM(2, 4, deter_size=8, hidden_size=8, latent="gaussian", stoch_size=3)
    post, prior = torch.randn(7, 6), torch.randn(7, 6)
    post[:, 3:], prior[:, 3:] = post[:, 3:].exp(), prior[:, 3:].exp()  # [mean, std]
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(post[:, :3], post[:, 3:]), torch.distributions.Normal(prior[:, :3], prior[:, 3:]))
    torch.testing.assert_close(rssm.kl(post, prior), expected.sum(-1))


def test_lambda_returns_by_hand():
    rewards = torch.tensor([1.0, 2.0])
    values = torch.tensor([0.5, 1.0, 3.0])
    discounts = torch.tensor([0.9, 0.8])
    # R_1 = 2 + 0.8 (0.5 * 3 + 0.5 * 3) = 4.4;  R_0 = 1 + 0.9 (0.5 * 1 + 0.5 * 4.4) = 3.43
    torch.testing.assert_close(lambda_returns(rewards, values, discounts, 0.5), torch.tensor([3.43, 4.4]))
    # lambda 0: one-step TD targets; lambda 1: discounted returns bootstrapped at the end
    torch.testing.assert_close(lambda_returns(rewards, values, discounts, 0.0), torch.tensor([1.9, 4.4]))
    torch.testing.assert_close(lambda_returns(rewards, values, discounts, 1.0),
                               torch.tensor([1 + 0.9 * (2 + 0.8 * 3), 2 + 0.8 * 3]))


@pytest.mark.parametrize("latent, stoch_dim, stats_shape", [("categorical", 32 * 32, (32, 32)),
                                                            ("gaussian", 30, (60,))])
def test_rssm_shapes(latent, stoch_dim, stats_shape):
    rssm = RSSM(action_dim=3, embed_dim=10, deter_size=20, hidden_size=16, latent=latent,
                stoch_size=32 if latent == "categorical" else 30, classes=32)
    T, B = 5, 4
    firsts = torch.zeros(T, B)
    firsts[0] = 1
    post, prior = rssm.observe(torch.randn(T, B, 10), torch.zeros(T, B, 3), firsts,
                               generator=torch.Generator().manual_seed(0))
    for state in (post, prior):
        assert state.deter.shape == (T, B, 20) and state.stoch.shape == (T, B, stoch_dim)
        assert state.stats.shape == (T, B, *stats_shape)
    assert post.feature.shape == (T, B, rssm.feature_size) == (T, B, 20 + stoch_dim)
    if latent == "categorical":  # one class per variable
        torch.testing.assert_close(post.stoch.reshape(T, B, 32, 32).sum(-1), torch.ones(T, B, 32))
    step = rssm.img_step(post.flatten(), torch.zeros(T * B, 3))
    assert step.deter.shape == (T * B, 20) and step.stoch.shape == (T * B, stoch_dim)


@pytest.mark.parametrize("term, scale_arg", [("reward_loss", "reward_scale"), ("discount_loss", "discount_scale")])
def test_loss_scale_weighs_only_its_term(term, scale_arg):
    rssm = RSSM(action_dim=3, embed_dim=8, deter_size=8, hidden_size=8, latent="categorical", stoch_size=2,
                classes=3)
    model = WorldModel(obs_dim=5, action_dim=3, rssm=rssm, hidden_size=8, embed_size=8)
    T, B = 4, 2
    batch = {"obs": torch.rand(T, B, 5), "actions": torch.zeros(T, B, 3), "rewards": torch.rand(T, B),
             "terminals": torch.zeros(T, B), "firsts": torch.zeros(T, B)}
    losses = [model.loss(batch, 0.8, 0.0, 1.0, generator=torch.Generator().manual_seed(0), **{scale_arg: scale})
              for scale in (1.0, 3.0)]
    (one, _, terms), (three, _, _) = losses
    assert terms[term] > 0
    torch.testing.assert_close(three - one, torch.tensor(2 * terms[term]))


def test_sequence_replay_windows_and_first_steps():
    replay = SequenceReplay(capacity=6, obs_dim=1, action_dim=2)
    for t in range(9):  # wraps: holds steps 3..8
        replay.add(np.array([t], np.float32), np.eye(2)[t % 2] if t % 4 else None, float(t), False, t % 4 == 0, None)
    batch = replay.sample(50, 3, np.random.default_rng(0), torch.device("cpu"))
    obs = batch["obs"][..., 0]
    assert obs.min() >= 3 and torch.equal(obs[1:] - obs[:-1], torch.ones(2, 50))  # consecutive, oldest kept
    assert torch.equal(batch["firsts"][0], torch.ones(50))  # every window starts from the zero state
    assert torch.equal(batch["firsts"][1:], (obs[1:] % 4 == 0).float())
    assert torch.equal(batch["actions"].sum(-1), (obs % 4 != 0).float())  # no action before a first step


def test_sequence_replay_state_holds_the_filled_rows_and_round_trips():
    rng = np.random.default_rng(0)
    for steps in (4, 9):  # partly filled; wrapped around its capacity of 6
        replay = SequenceReplay(capacity=6, obs_dim=2, action_dim=3)
        for t in range(steps):
            replay.add(rng.random(2, dtype=np.float32), np.eye(3)[t % 3], float(t), t % 4 == 3, t % 4 == 0,
                       np.eye(3)[t % 3])
        state = replay.state_dict()
        assert len(state["obs"]) == min(steps, 6)
        copy = SequenceReplay(capacity=6, obs_dim=2, action_dim=3)
        copy.load_state_dict(state)
        a, b = (r.sample(8, 3, np.random.default_rng(1), torch.device("cpu")) for r in (replay, copy))
        assert all(torch.equal(a[k], b[k]) for k in a)


def small(version):
    return dict(deter_size=32, hidden_size=32, units=32, stoch_size=4 if version == 2 else 8,
                classes=4 if version == 2 else 1, batch_size=4, seq_len=8, train_every=5, train_steps=1, prefill=60,
                buffer_size=1000, updates_per_evaluation=None)


@pytest.mark.parametrize("name", ["dreamer_v1", "dreamer_v2"])
def test_dreamer_honours_masks_on_nasnet(name):
    space = NASNetSpace()
    env = NASEnv(space, CallableEvaluator(space, lambda a: 0.5))  # raises on any illegal action
    agent = make_agent(name, env, seed=0, **{**small(int(name[-1])), "prefill": 100})
    agent.learn(Budget(env_steps=300))
    assert agent.env.env_steps == 300 and agent.updates == 41  # every 5 steps from step 100 to 300
    assert agent.model.mask is not None  # imagination reads the predicted legal actions


def nb201_ones_env():
    from rlnas.spaces import NB201Space

    space = NB201Space()
    return NASEnv(space, CallableEvaluator(space, lambda a: float(np.mean(np.array(space.from_string(a)) == 1))))


def test_dreamer_trains_per_new_evaluation_and_skips_repeats():
    """With ``updates_per_evaluation`` a repeated architecture is neither stored nor trained
    on: after two random episodes (the prefill) the policy below builds one cell forever."""
    agent = make_agent("dreamer_v2", nb201_ones_env(), seed=0,
                       **{**small(2), "prefill": 12, "updates_per_evaluation": 3}, preset=None)
    agent._act = lambda state, mask, deterministic: int(np.flatnonzero(mask)[0])
    agent.learn(Budget(env_steps=60))  # 10 episodes: 2 random, 1 new fixed cell, 7 repeats of it
    assert agent.env.env_steps == 60 and len(agent.env.evaluations) == 3 and agent.env.stale_episodes == 7
    assert agent.replay.size == 3 * 7 and agent.steps == 3 * 6  # 7 observations an episode, repeats dropped
    assert agent.updates == 2 * 3  # after the 2nd episode (the prefill's 12 steps are in) and the 3rd


@pytest.mark.parametrize("name, per_evaluation", [("dreamer_v1", None), ("dreamer_v2", None), ("dreamer_v2", 2)])
def test_dreamer_save_load_continues_identically(name, per_evaluation, tmp_path):
    kwargs = {**small(int(name[-1])), "updates_per_evaluation": per_evaluation}
    a = make_agent(name, nb201_ones_env(), seed=1, **kwargs)
    a.learn(Budget(env_steps=120))
    a.save(tmp_path / "a.pt")
    b = make_agent(name, nb201_ones_env(), seed=1, **kwargs).load(tmp_path / "a.pt")
    b.env.restore(list(a.env.evaluations), a.env.env_steps, a.env.episodes, 0.0)  # what a resumed run restores
    for agent in (a, b):
        agent.learn(Budget(env_steps=240))
    assert a.updates == b.updates > 0
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_dreamer_refuses_what_it_cannot_drive():
    with pytest.raises(TypeError, match=r"needs a Discrete action space, a Box of one value in \[0, 1\]"):
        make_agent("dreamer_v2", gym.make("Pendulum-v1"), preset=None)


def test_the_reward_ensemble_trains_each_head_and_imagines_on_their_mean():
    rssm = RSSM(action_dim=3, embed_dim=8, deter_size=8, hidden_size=8, latent="categorical", stoch_size=2,
                classes=3)
    model = WorldModel(obs_dim=5, action_dim=3, rssm=rssm, hidden_size=8, embed_size=8, reward_heads=3)
    for k, head in enumerate(model.rewards):  # head k says k + 1 everywhere
        for p in head.parameters():
            nn.init.zeros_(p)
        nn.init.constant_(head[-1].bias, k + 1.0)
    feature = torch.rand(4, rssm.feature_size)
    torch.testing.assert_close(model.reward_heads(feature), torch.tensor([1.0, 2.0, 3.0]).expand(4, 3))
    torch.testing.assert_close(model.reward(feature), torch.full((4, 1), 2.0))
    T, B = 4, 2
    batch = {"obs": torch.rand(T, B, 5), "actions": torch.zeros(T, B, 3), "rewards": torch.full((T, B), 2.0),
             "terminals": torch.zeros(T, B), "firsts": torch.zeros(T, B)}
    terms = model.loss(batch, 0.8, 0.0, 1.0, generator=torch.Generator().manual_seed(0))[2]
    assert terms["reward_loss"] == pytest.approx((0.5 * 1 + 0.0 + 0.5 * 1) / 3)  # each head's squared error


def planning_dreamer(**settings):
    return make_agent("dreamer_v2", nb201_ones_env(), seed=0,
                      **{**small(2), "reward_heads": 3, "candidates": 16, "planning_rounds": 1, **settings})


def test_a_planned_episode_reads_one_head_drawn_for_it_and_takes_its_best_unseen_cell():
    agent = planning_dreamer()
    agent.seen = {(1, 1, 1, 1, 1, 1): 1.0}
    calls = []

    def scored(cells, head):  # a different, fixed score of every cell under each head
        calls.append((cells, head))
        return {c: float(np.sin(1.0 + head + np.dot(c, [1, 3, 5, 7, 11, 13]))) for c in cells}

    agent._scored = scored
    obs = agent._observation(agent.nas_env().preview(())[0])
    heads = set()
    for _ in range(12):
        calls.clear()
        chosen = agent._imagined_best(obs)
        (first, head), (near, again) = calls  # the actor's and the best cell's neighbours, then one round
        assert set(agent.nas_env().space.neighbours((1,) * 6, np.random.default_rng(0))) <= set(first)
        assert again == head and not set(near) & set(first)
        assert all(agent._unseen(c) for c in first + near) and (1, 1, 1, 1, 1, 1) not in first + near
        assert chosen == max(first + near, key=lambda c: scored([c], head)[c])
        heads.add(head)
    assert heads == {0, 1, 2}  # uniform over the heads, episode by episode


@pytest.mark.parametrize("prior_in_action", [False, True])
def test_scoring_cells_in_a_batch_is_filtering_each_episode_step_by_step(prior_in_action):
    agent = planning_dreamer(cell_prior=True, prior_in_action=prior_in_action)
    env, cells = agent.nas_env(), [(0, 1, 2, 3, 4, 0), (4, 4, 4, 4, 4, 4)]
    scored = agent._scored(cells, head=2)
    for cell in cells:
        state, action = None, None
        for t in range(7):
            obs, mask = env.preview(cell[:t])
            obs = agent._observation(obs)
            state = agent._filter(state, None if action is None else agent._reached(action, obs), obs, sample=False)
            action = agent._vector(cell[t], mask) if t < 6 else None
        assert scored[cell] == pytest.approx(agent.model.reward_heads(state.feature)[0, 2].item(), abs=1e-5)


def test_cell_prior_shows_a_finished_cells_proxies_and_op_classes():
    agent = planning_dreamer(cell_prior=True)
    env = agent.nas_env()
    size = env.observation_space.shape[0]
    unfinished = agent._observation(env.preview((1, 1, 1))[0])
    assert unfinished.shape == (size + 2 + 6 * 3,) and not unfinished[size:].any()
    cell = (0, 1, 2, 3, 4, 0)  # none, skip, conv 1x1, conv 3x3, avg pool, none
    extra = agent._observation(env.preview(cell)[0])[size:]
    synflow, params = nb201_proxy_columns(env.space)
    index = 0 * 5**5 + 1 * 5**4 + 2 * 5**3 + 3 * 5**2 + 4 * 5 + 0
    np.testing.assert_allclose(extra[:2], [synflow[index], params[index]])
    np.testing.assert_array_equal(extra[2:].reshape(6, 3), np.eye(3)[[0, 1, 2, 2, 1, 0]])


def test_prior_in_action_gives_the_action_that_finishes_a_cell_its_prior():
    agent = planning_dreamer(cell_prior=True, prior_in_action=True)
    env, cell = agent.nas_env(), (0, 1, 2, 3, 4, 0)
    size = env.observation_space.shape[0]
    assert agent.action_dim == 5 + 2 + 6 * 3  # the choice's one-hot, then the prior's slots
    prior = agent._observation(env.preview(cell)[0])[size:]
    vector = agent._vector(0, env.preview(cell[:5])[1])
    np.testing.assert_array_equal(agent._reached(vector, agent._observation(env.preview(cell)[0])),
                                  np.r_[1, 0, 0, 0, 0, prior])
    assert not agent._reached(vector, agent._observation(env.preview(cell[:3])[0]))[5:].any()
    _, actions = agent._episode_of(env, cell)  # the planning rounds' episodes carry it too
    np.testing.assert_array_equal(actions[-1][5:], prior)
    assert not actions[:-1, 5:].any()
    # imagined: the cells so far are read from the observations, the finishing choice gets the prior
    obs = torch.as_tensor(np.stack([agent._observation(env.preview(p)[0]) for p in (cell[:5], cell[:2])]))
    cells, position = agent._cells_of(obs)
    assert cells[0, :5].tolist() == [0, 1, 2, 3, 4] and cells[1, :2].tolist() == [0, 1]
    assert position.tolist() == [5, 2]
    onehot = torch.eye(5)[[0, 3]]
    action, cells = agent._imagined_prior(onehot, cells, position)
    assert cells[0].tolist() == list(cell) and cells[1, :3].tolist() == [0, 1, 3]
    torch.testing.assert_close(action[0], torch.as_tensor(np.r_[1, 0, 0, 0, 0, prior], dtype=torch.float32))
    torch.testing.assert_close(action[1], torch.cat([torch.eye(5)[3], torch.zeros(20)]))
    agent = planning_dreamer(cell_prior=True, prior_in_action=True, prefill=6)
    agent.learn(Budget(evaluations=3))  # imagination from replayed states reads their cells too
    assert agent.updates > 0


def test_the_prefill_builds_synflows_spread_design_on_nb201():
    agent = planning_dreamer(design_spread=2, prefill=60, updates_per_evaluation=1)
    agent.learn(Budget(evaluations=10))
    space = agent.nas_env().space
    built = [space.from_string(e.arch) for e in agent.env.evaluations]
    design = spread_design(torch.tensor(space.all_cells()), nb201_proxy_columns(space)[0], 10, 2)
    assert built == agent.design == design and built[0] == (3, 3, 3, 3, 3, 3)  # SynFlow's best: conv 3x3 everywhere
