"""PPO, A2C and DQN / Rainbow: each algorithmic piece against hand-computed values, then
whole agents (Dreamer V2 too) on objectives whose optimum is known."""

import numpy as np
import pytest
import torch

from rlnas.agents import make_agent
from rlnas.agents.dqn import NoisyLinear, categorical_projection, masked_argmax, td_target
from rlnas.agents.on_policy import compute_gae, scale_by_running_rms
from rlnas.agents.policies import ActorCritic
from rlnas.agents.replay import NStepCollector, PrioritizedReplayBuffer, ReplayBuffer, SumTree, n_step_return
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.evaluators import CallableEvaluator
from rlnas.spaces import NASNetSpace, NB201Space


def test_gae_by_hand():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    ended = torch.tensor([[0.0], [1.0], [0.0]])
    adv, ret = compute_gae(rewards, values, ended, torch.tensor([0.2]), gamma=0.9, lam=0.8)
    # t=2: 2 + .9 * .2 - .3 = 1.88;  t=1 ends the episode: 0 - .4 = -.4;  t=0: (1 + .9 * .4 - .5) + .72 * -.4
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.572, -0.4, 1.88]))
    torch.testing.assert_close(ret[:, 0], torch.tensor([1.072, 0.0, 2.18]))


def test_gae_with_lambda_one_is_the_discounted_return_minus_value():
    rewards, values = torch.tensor([[1.0], [1.0], [1.0]]), torch.tensor([[0.0], [0.0], [0.0]])
    adv, _ = compute_gae(rewards, values, torch.zeros(3, 1), torch.tensor([10.0]), gamma=0.5, lam=1.0)
    torch.testing.assert_close(adv[:, 0], torch.tensor([1 + 0.5 + 0.25 + 1.25, 1 + 0.5 + 2.5, 1 + 5.0]))


def test_centred_critic_by_hand():
    """m is the mean of every return seen, and the critic's output is read as V - m."""
    agent = make_agent("a2c", nb201_env(), seed=0, center_values=True, preset=None)
    assert agent._observe_returns(torch.tensor([[1.0], [2.0], [3.0]])) == pytest.approx(2.0)
    assert agent._observe_returns(torch.tensor([[5.0]])) == pytest.approx(0.75)  # (1 + 2 + 3 + 5) / 4 = 2.75
    torch.testing.assert_close(agent._values(torch.tensor([0.25])), torch.tensor([3.0]))
    resumed = make_agent("a2c", nb201_env(), seed=0, center_values=True, preset=None)
    resumed.load_state_dict(agent.state_dict())
    assert (resumed.return_mean, resumed.return_count) == (2.75, 4)
    plain = make_agent("a2c", nb201_env(), seed=0, preset=None)  # SB3's default: no centring
    assert plain._observe_returns(torch.tensor([[1.0]])) == 0.0 and plain.return_mean == 0.0


def test_running_advantage_scale_by_hand():
    """s is an exponential average of mean(A^2) over updates, and A is divided by its root."""
    first, s = scale_by_running_rms(torch.tensor([3.0, 4.0]), None, 0.5)  # s = (9 + 16) / 2 = 12.5
    torch.testing.assert_close(first, torch.tensor([3.0, 4.0]) / 12.5**0.5)
    second, s = scale_by_running_rms(torch.tensor([1.0, -1.0]), s, 0.5)  # s = 0.5 * 12.5 + 0.5 * 1 = 6.75
    torch.testing.assert_close(second, torch.tensor([1.0, -1.0]) / 6.75**0.5)
    assert s == pytest.approx(6.75)


def test_a2c_keeps_and_saves_its_advantage_scale():
    def a2c(decay: float):
        return make_agent("a2c", nb201_env(), seed=0, normalize_advantage_decay=decay)

    agent, off = a2c(0.5).learn(Budget(evaluations=3)), a2c(0.0).learn(Budget(evaluations=3))
    assert agent.advantage_square > 0 and off.advantage_square is None
    resumed = a2c(0.5)
    resumed.load_state_dict(agent.state_dict())
    assert resumed.advantage_square == agent.advantage_square
    with pytest.raises(ValueError, match=r"normalize_advantage_decay=1.0 must be a number in \[0, 1\)"):
        make_agent("a2c", nb201_env(), normalize_advantage_decay=1.0, preset=None)
    with pytest.raises(ValueError, match="both scale the advantages; choose one"):
        make_agent("a2c", nb201_env(), normalize_advantage=True, normalize_advantage_decay=0.9, preset=None)


def test_n_step_returns_by_hand():
    assert n_step_return([1.0, 2.0, 3.0], 0.9) == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)
    collector = NStepCollector(n=3, gamma=0.9)
    out = []
    for t, r in enumerate([1.0, 2.0, 3.0, 4.0]):
        out += collector.push(f"s{t}", t, r, f"s{t + 1}", terminated=t == 3, ended=t == 3, next_mask=None)
    assert [(o[0], o[3], o[4]) for o in out] == [("s0", "s3", False), ("s1", "s4", True), ("s2", "s4", True),
                                                  ("s3", "s4", True)]
    np.testing.assert_allclose([o[2] for o in out], [5.23, 2 + 2.7 + 3.24, 3 + 3.6, 4.0])
    np.testing.assert_allclose([o[5] for o in out], [0.729, 0.729, 0.81, 0.9])


def test_c51_projection_by_hand():
    support = torch.tensor([0.0, 1.0, 2.0])
    probs = torch.tensor([[0.2, 0.3, 0.5]] * 3)
    returns = torch.tensor([0.5, 0.5, 5.0])
    dones = torch.tensor([0.0, 1.0, 0.0])
    target = categorical_projection(probs, returns, torch.full((3,), 0.5), dones, support)
    # Tz = .5 + .5 z = [.5, 1, 1.5]: .2 splits over atoms 0/1, .3 lands on 1, .5 splits over 1/2
    torch.testing.assert_close(target[0], torch.tensor([0.1, 0.65, 0.25]))
    torch.testing.assert_close(target[1], torch.tensor([0.5, 0.5, 0.0]))  # terminal: all mass at r = .5
    torch.testing.assert_close(target[2], torch.tensor([0.0, 0.0, 1.0]))  # clipped at v_max
    torch.testing.assert_close(target.sum(1), torch.ones(3))


def test_sum_tree_sampling_proportions():
    tree = SumTree(5)
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    assert tree.total == 10.0 and tree.capacity == 8
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99])),
                                  [0, 0, 1, 1, 2, 2, 3, 3])
    counts = np.bincount(tree.find(np.random.default_rng(0).uniform(0, tree.total, 100_000)), minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.005)
    tree.update(np.array([3]), np.array([0.0]))
    assert tree.total == 6.0 and 3 not in tree.find(np.linspace(0, 5.999, 50))


def test_prioritized_replay_weights_by_hand():
    buffer = PrioritizedReplayBuffer(8, obs_dim=1, num_actions=2, masked=False, seed=0, alpha=1.0, eps=0.0)
    for i in range(4):
        buffer.add([i], 0, 0.0, [i], False, 1.0, None)
    buffer.update_priorities(np.arange(4), np.array([1.0, 1.0, 1.0, 5.0]))
    batch = buffer.sample(4, torch.device("cpu"), beta=1.0)
    # stratified over 4 segments of the total 8: indices 0, 1|2, 3, 3
    probs = np.array([1, 1, 1, 5])[batch["indices"]] / 8
    expected = (4 * probs) ** -1.0
    torch.testing.assert_close(batch["weights"], torch.tensor(expected / expected.max(), dtype=torch.float32))
    assert list(batch["indices"][2:]) == [3, 3]


@pytest.mark.parametrize("prioritized", [False, True])
def test_replay_state_holds_the_filled_rows_and_replays_the_same_batches(prioritized):
    cls = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    a, b = (cls(1000, obs_dim=2, num_actions=3, masked=True, seed=0) for _ in range(2))
    for i in range(7):
        a.add([i, -i], i % 3, 0.1 * i, [i + 1, -i], i == 6, 0.9, [True, i % 2 == 0, True])
    if prioritized:
        a.update_priorities(np.array([1, 4]), np.array([3.0, 0.5]))
    a.sample(2, torch.device("cpu"))
    state = a.state_dict()
    assert state["obs"].shape == (7, 2) and state["next_masks"].shape == (7, 3)  # not the 1000 rows of capacity
    b.load_state_dict(torch.load(save_and_read(state), weights_only=True))
    assert (b.size, b.pos) == (a.size, a.pos) == (7, 7)
    if prioritized:
        np.testing.assert_array_equal(b.tree.tree, a.tree.tree)  # every inner sum to the bit
        assert b.max_priority == a.max_priority
    for x, y in zip(a.sample(5, torch.device("cpu")).values(), b.sample(5, torch.device("cpu")).values(), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    b.add([9, 9], 0, 1.0, [9, 9], True, 1.0, [True, True, True])
    assert b.pos == 8 and b.data["obs"][7, 0] == 9


def save_and_read(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_noisy_layer_noise_reset():
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3, sigma0=0.5)
    x = torch.ones(1, 4)
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu))  # eps = 0 at start
    layer.reset_noise(torch.Generator().manual_seed(1))
    first = layer(x)
    eps_w = torch.outer(layer.eps_out, layer.eps_in)
    assert torch.linalg.matrix_rank(eps_w) == 1  # factorised noise
    assert torch.all(layer.eps_in.abs() > 0)
    layer.reset_noise(torch.Generator().manual_seed(2))
    assert not torch.equal(layer(x), first)
    layer.reset_noise(torch.Generator().manual_seed(1))
    assert torch.equal(layer(x), first)  # seeded: reproducible


def test_masked_argmax_in_the_target():
    q = torch.tensor([[5.0, 1.0, 3.0], [0.0, 2.0, 1.0]])
    mask = torch.tensor([[False, True, True], [False, False, False]])
    assert masked_argmax(q, mask).tolist() == [2, 0]  # best legal; a finished state gives 0, finite
    assert masked_argmax(q, None).tolist() == [0, 1]


def test_td_target_takes_the_masked_argmax():
    returns, discounts, dones = torch.tensor([1.0, 1.0, 1.0]), torch.full((3,), 0.5), torch.tensor([0.0, 0.0, 1.0])
    q_target = torch.tensor([[9.0, 2.0, 4.0], [9.0, 2.0, 4.0], [9.0, 2.0, 4.0]])
    q_online = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0], [0.0, 5.0, 1.0]])
    masks = torch.tensor([[False, True, True], [False, False, True], [False, False, False]])
    # plain DQN: best legal target value; double Q: the online net's best legal action, valued by the target net
    torch.testing.assert_close(td_target(returns, discounts, dones, q_target, None, masks),
                               torch.tensor([1 + 0.5 * 4, 1 + 0.5 * 4, 1.0]))
    torch.testing.assert_close(td_target(returns, discounts, dones, q_target, q_online, masks),
                               torch.tensor([1 + 0.5 * 2, 1 + 0.5 * 4, 1.0]))
    # without masks the illegal action 0 (value 9) would have been taken
    torch.testing.assert_close(td_target(returns, discounts, dones, q_target, None, None)[0], torch.tensor(5.5))


def nb201_env(reward_op=3):
    space = NB201Space()
    score = lambda a: float(np.mean(np.array(space.from_string(a)) == reward_op))  # noqa: E731
    return NASEnv(space, CallableEvaluator(space, score))


@pytest.mark.parametrize("name, hparams, steps", [
    ("ppo", {}, 1800),
    ("ppo", {"policy": "mlp"}, 1800),
    ("a2c", {}, 1800),
    ("dqn", {}, 2400),
    ("rainbow", {}, 1800),
    ("dreamer_v2", {"updates_per_evaluation": 6}, 900),
])
@pytest.mark.slow
def test_agents_learn_a_known_objective(name, hparams, steps):
    """Reward = fraction of edges that are nor_conv_3x3; chance is 0.2, the optimum 1.0."""
    agent = make_agent(name, nb201_env(), seed=0, **hparams)
    agent.learn(Budget(env_steps=steps))
    env = nb201_env()
    obs, info = env.reset(seed=0)
    for t in range(6):
        action = agent.predict(obs, info["action_mask"], deterministic=True, episode_start=t == 0)
        obs, reward, *_, info = env.step(action)
    assert reward >= 5 / 6


@pytest.mark.parametrize("name", ["ppo", "a2c", "dqn", "rainbow"])
def test_masks_honoured_on_nasnet(name):
    space = NASNetSpace()
    env = NASEnv(space, CallableEvaluator(space, lambda a: 0.5))  # raises on any illegal action
    agent = make_agent(name, env, seed=0)
    agent.learn(Budget(env_steps=400))
    assert agent.env.env_steps == 400


@pytest.mark.parametrize("policy, center_values, shared_lstm",
                         [("mlp", False, False), ("lstm", False, True), ("lstm", True, True), ("lstm", True, False)])
def test_evaluate_actions_replays_the_rollout(policy, center_values, shared_lstm):
    """Before any update, recomputed log-probs and values equal those recorded while acting:
    the LSTM replay resets its state exactly where episodes started (the critic's LSTM too),
    and a centred critic's recorded values moved with the mean return the rollout changed."""
    agent = make_agent("ppo", nb201_env(), seed=0, policy=policy, hidden_sizes=(64,), n_steps=20, batch_size=20,
                       center_values=center_values, shared_lstm=shared_lstm, preset=None)
    rollout = agent.collect(Budget(env_steps=1000))
    if center_values:
        assert agent.return_count == 20 and agent.return_mean == pytest.approx(rollout.returns.mean().item())
    init = rollout.initial_state
    log_probs, _, values = agent.evaluate_actions(rollout.obs, rollout.actions, rollout.masks, rollout.starts, init)
    torch.testing.assert_close(log_probs, rollout.log_probs)
    torch.testing.assert_close(values, rollout.values)


def test_a_critic_lstm_of_its_own_keeps_the_value_loss_off_the_policy():
    """With ``shared_lstm=False`` the value loss has no gradient in any actor parameter and
    the policy's logits none in the critic's; with the shared LSTM the value loss reaches it."""
    obs, starts = torch.randn(3, 4, 8), torch.tensor([[1.0] * 4, [0.0] * 4, [1.0, 0.0, 0.0, 1.0]])
    for shared in (True, False):
        net = ActorCritic(8, 5, [16], recurrent=True, shared_lstm=shared)
        state, values, logits = net.initial_state(4), [], []
        for t in range(3):
            out, value, state = net(obs[t], state, starts[t])
            logits.append(out)
            values.append(value)
        torch.stack(values).square().sum().backward(retain_graph=True)
        lstm_grad = net.controller.lstm.weight_hh.grad
        assert (lstm_grad is not None and lstm_grad.abs().sum() > 0) == shared
        if not shared:
            assert all(p.grad is None or not p.grad.any() for p in net.controller.parameters())
            net.zero_grad()
            torch.stack(logits).sum().backward()
            assert all(p.grad is None or not p.grad.any() for p in net.critic.parameters())
    with pytest.raises(ValueError, match="shared_lstm=True .* needs policy='lstm', got policy='mlp'"):
        make_agent("a2c", nb201_env(), policy="mlp", shared_lstm=True, preset=None)


def test_a_checkpoint_with_the_other_critic_is_refused_by_name(tmp_path):
    make_agent("ppo", nb201_env(), policy="lstm", shared_lstm=True, preset=None).save(tmp_path / "shared.pt")
    with pytest.raises(ValueError, match="saved with shared_lstm=True, this agent has shared_lstm=False"):
        make_agent("ppo", nb201_env(), policy="lstm", preset=None).load(tmp_path / "shared.pt")


def test_ppo_and_dqn_on_cartpole_vector_env():
    import gymnasium as gym

    for name in ("ppo", "dqn"):
        envs = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
        agent = make_agent(name, envs, seed=0, **({"policy": "mlp", "n_steps": 16, "batch_size": 32}
                                                  if name == "ppo" else {}), preset=None)
        agent.learn(Budget(env_steps=640))
        assert agent.env.env_steps == 640 and agent.env.episodes > 0
