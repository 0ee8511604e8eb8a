from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlnas.agents import make_agent
from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.policies import ActionHead, masked_categorical
from rlnas.cli.train import compose
from rlnas.core.store import EvaluationStore
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget, SearchMonitor
from rlnas.evaluators import CallableEvaluator, TabularEvaluator
from rlnas.search.runner import run
from rlnas.spaces import NASNetSpace, NB201Space

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ["random", "evolution", "reinforce"]
PEERS = ["local_search", "tpe", "planner"]
BUILT_IN = [*BASELINES, *PEERS, "ppo", "a2c", "dqn", "rainbow", "dreamer_v1", "dreamer_v2", "darts", "gdas", "snas"]


@pytest.fixture(scope="module")
def table():
    return TabularEvaluator()


def nb201_env(table):
    return NASEnv("nb201", table)


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_same_seed_same_search_through_the_runner(tmp_path, name):
    def sequence(run_dir):
        run(compose([f"agent={name}", "budget.evaluations=40", "quiet=true", "seed=3"]), run_dir)
        return [e.arch for e in EvaluationStore(run_dir / "evaluations.sqlite").history()]

    first, second = sequence(tmp_path / "a"), sequence(tmp_path / "b")
    assert first == second and len(set(first)) == 40
    run(compose([f"agent={name}", "budget.evaluations=40", "quiet=true", "seed=4"]), tmp_path / "c")
    assert [e.arch for e in EvaluationStore(tmp_path / "c" / "evaluations.sqlite").history()] != first


@pytest.mark.parametrize("name", BUILT_IN)
def test_predict_contract_masks_and_episode_start(name):
    """One ``predict`` per step, ``episode_start`` at the first, every agent; only legal
    actions (the env raises otherwise); a deterministic policy builds the same cell in two
    episodes, so recurrent agents really start afresh."""
    space = NASNetSpace()
    env = NASEnv(space, CallableEvaluator(space, lambda a: 0.5))
    agent = make_agent(name, env, seed=0)
    cells = []
    for _ in range(2):
        obs, info = env.reset(seed=0)
        for t in range(space.num_decisions):
            obs, *_, info = env.step(agent.predict(obs, info["action_mask"], deterministic=True, episode_start=t == 0))
        cells.append(info["arch"])
    if not isinstance(agent, ArchitectureAgent):  # with nothing evaluated yet these choose at random
        assert cells[0] == cells[1]


def test_registry_errors(table):
    with pytest.raises(ValueError, match="unknown agent .dqn9.; available agents: a2c, darts, dqn, dreamer_v1"):
        make_agent("dqn9", nb201_env(table), preset=None)
    with pytest.raises(ValueError, match=r"evolution has no setting\(s\) \['lr'\]; it takes population_size"):
        make_agent("evolution", nb201_env(table), lr=0.1, preset=None)
    with pytest.raises(TypeError, match="needs an rlnas NASEnv"):
        make_agent("random", gym.make("CartPole-v1"), preset=None)


def test_random_search_never_repeats_and_exhausts_a_tiny_space():
    space = NASNetSpace(num_blocks=1, ops=["identity"])  # 2 inputs x 2 inputs x 2 combos per cell
    env = NASEnv(space, CallableEvaluator(space, lambda arch: 0.0))
    agent = make_agent("random", env, seed=0, preset=None)
    agent.learn(Budget(evaluations=10_000))
    archs = [e.arch for e in agent.env.evaluations]
    assert len(archs) == len(set(archs)) == space.size == 64
    assert agent.env.episodes == 64


def test_evolution_children_are_one_mutation_from_the_recent_population(table):
    agent = make_agent("evolution", nb201_env(table), seed=0, population_size=8, sample_size=3, preset=None)
    agent.learn(Budget(evaluations=120))
    space = NB201Space()
    played = [space.from_string(e.arch) for e in agent.env.evaluations]
    assert len(agent.population) == 8
    # the population is the 8 most recent children (aging), each with its table score
    for member, score in agent.population:
        assert score == pytest.approx(table.evaluate(space.to_string(member)).score)
    # every child after the first 8 differs in exactly one decision from some earlier member
    for child in played[8:40]:
        assert any(sum(a != b for a, b in zip(child, p, strict=True)) == 1 for p in played[:played.index(child)])


def test_evolution_beats_random_search_on_average(table):
    def mean_best(name):
        scores = []
        for seed in range(8):
            agent = make_agent(name, nb201_env(table), seed=seed, preset=None)
            agent.learn(Budget(evaluations=150))
            scores.append(agent.env.best.score)
        return np.mean(scores)

    assert mean_best("evolution") > mean_best("random")


def test_masked_softmax_log_prob_and_entropy_by_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, False, True]])
    dist = masked_categorical(logits, mask)
    # softmax over the legal logits 1 and 3 only
    expected = torch.tensor([np.exp(1) / (np.exp(1) + np.exp(3)), 0.0, np.exp(3) / (np.exp(1) + np.exp(3))])
    torch.testing.assert_close(dist.probs[0], expected.float())
    p = expected[[0, 2]]
    torch.testing.assert_close(dist.entropy()[0], -(p * p.log()).sum().float())
    assert torch.isfinite(dist.log_prob(torch.tensor([1])))  # finite, not NaN: no gradient blow-up


def test_categorical_gives_torchs_floats_and_gradients():
    """Ours skips torch's argument handling; a run must not change by a bit for it."""
    torch.manual_seed(0)
    logits = torch.randn(7, 5, requires_grad=True)
    mask = torch.rand(7, 5) > 0.3
    mask[:, 0] = True
    actions = (torch.rand(7, 5) * mask).argmax(-1)  # a legal action per row
    ours = masked_categorical(logits, mask)
    theirs = torch.distributions.Categorical(logits=logits.masked_fill(~mask, torch.finfo(logits.dtype).min))
    assert torch.equal(ours.probs, theirs.probs)
    assert torch.equal(ours.entropy(), theirs.entropy())
    assert torch.equal(ours.log_prob(actions), theirs.log_prob(actions))

    def grad(dist) -> torch.Tensor:
        return torch.autograd.grad((dist.log_prob(actions) + 0.1 * dist.entropy()).sum(), logits)[0]

    ours_grad = grad(ours)
    assert torch.equal(ours_grad, grad(theirs)) and ours_grad.abs().sum() > 0


def test_reinforce_learns_a_known_objective():
    space = NB201Space()
    # reward: fraction of edges that are nor_conv_3x3 (choice 3); the optimum is all 3s
    rewards = []

    def score(arch):
        rewards.append(np.mean(np.array(space.from_string(arch)) == 3))
        return rewards[-1]

    evaluator = CallableEvaluator(space, score)
    agent = make_agent("reinforce", NASEnv(space, evaluator), seed=0, learning_rate=0.02, preset=None)
    agent.learn(Budget(env_steps=6 * 400))
    assert len(rewards) == 400
    assert np.mean(rewards[:10]) < 0.45 < 0.9 < np.mean(rewards[-50:])  # chance level is 0.2
    env = NASEnv(space, evaluator)
    obs, info = env.reset(seed=0)
    for t in range(6):
        obs, reward, _, _, info = env.step(agent.predict(obs, info["action_mask"], deterministic=True,
                                                         episode_start=t == 0))
    assert reward == 1.0


def test_reinforce_running_advantage_scale_by_hand(table):
    """(G - b) is divided by the root of a running mean of its square; the scale is saved."""
    agent = make_agent("reinforce", nb201_env(table), seed=0, entropy_coef=0.0, normalize_advantage_decay=0.5,
                       preset=None)
    log_probs, entropies = torch.tensor([-1.0, -2.0, -3.0]), torch.zeros(3)
    # first episode: b starts at its return 0.8, so A = 0 and s = 0
    assert agent._episode_loss(log_probs, entropies, [0.0, 0.0, 0.8]).item() == 0.0
    assert agent.advantage_square == 0.0
    resumed = make_agent("reinforce", nb201_env(table), seed=0, entropy_coef=0.0, normalize_advantage_decay=0.5,
                         preset=None)
    resumed.load_state_dict(agent.state_dict())
    # second: every step's G is 0.6, A = -0.2, s = 0.5 * 0 + 0.5 * 0.04 = 0.02; loss = -sum(A / sqrt(s) * log pi)
    for a in (agent, resumed):
        loss = a._episode_loss(log_probs, entropies, [0.0, 0.0, 0.6])
        assert a.advantage_square == pytest.approx(0.02)
        assert loss.item() == pytest.approx(-(-0.2 / 0.02**0.5) * (-1.0 - 2.0 - 3.0))
    with pytest.raises(ValueError, match=r"normalize_advantage_decay=1.0 must be a number in \[0, 1\)"):
        make_agent("reinforce", nb201_env(table), normalize_advantage_decay=1.0, preset=None)


def test_reinforce_honours_masks_on_nasnet():
    space = NASNetSpace()
    env = NASEnv(space, CallableEvaluator(space, lambda arch: 0.5))  # raises on any illegal action
    agent = make_agent("reinforce", env, seed=0, preset=None)
    agent.learn(Budget(evaluations=30))
    assert len(agent.env.evaluations) == 30


def test_reinforce_runs_on_cartpole():
    agent = make_agent("reinforce", gym.make("CartPole-v1"), seed=0, preset=None)
    agent.learn(Budget(env_steps=500))
    assert agent.env.env_steps >= 500 and agent.env.evaluations == []


@pytest.mark.parametrize("name", [*BASELINES, "local_search", "tpe", pytest.param("planner", marks=pytest.mark.slow)])
def test_save_load_continues_identically(tmp_path, table, name):
    agent = make_agent(name, nb201_env(table), seed=1, preset=None)
    agent.learn(Budget(evaluations=30))
    agent.save(tmp_path / "agent.pt")
    agent.learn(Budget(evaluations=60))
    continued = [e.arch for e in agent.env.evaluations[30:]]

    clone = make_agent(name, nb201_env(table), seed=99, preset=None).load(tmp_path / "agent.pt")
    clone.env.restore(agent.env.evaluations[:30], env_steps=0, episodes=0, wall_seconds=0.0)
    clone.learn(Budget(evaluations=60))
    assert [e.arch for e in clone.env.evaluations[30:]] == continued


def test_budget_and_monitor(table):
    with pytest.raises(ValueError, match=r"budget: evaluations=-1 must be an integer >= 1, or null \(no limit\)"):
        Budget(evaluations=-1)
    with pytest.raises(ValueError, match="needs budget.evaluations or budget.env_steps"):
        Budget()
    monitor = SearchMonitor(nb201_env(table))
    for _ in range(2):  # the same cell twice: one evaluation, twelve steps
        monitor.reset()
        for action in (3, 3, 3, 1, 2, 3):
            monitor.step(action)
    assert len(monitor.evaluations) == 1 and monitor.env_steps == 12 and monitor.episodes == 2
    assert monitor.stale_episodes == 1
    assert not monitor.within(Budget(evaluations=1))
    assert monitor.within(Budget(evaluations=2, env_steps=13))
    assert not monitor.within(Budget(evaluations=2, env_steps=12))
    assert not monitor.within(Budget(evaluations=2, patience=1))
    assert monitor.best.metrics["arch_index"] == 13714


def test_the_hybrid_head_gives_a_choices_and_a_values_log_probability_and_entropy_by_hand():
    head = ActionHead(gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(0.0, 1.0, (1,), np.float32))), "t")
    two = float(np.log(np.e - 1))  # softplus(two) = 1: the Kumaraswamy's a and b are 1 + 1 = 2
    out = torch.tensor([[0.0, np.log(3.0), 5.0, 5.0],  # a choice step: probabilities 1/4, 3/4
                        [7.0, -7.0, two, two]], dtype=torch.float32)  # a value step (its mask allows no choice)
    mask = torch.tensor([[True, True], [False, False]])
    dist = head.distribution(out, mask)
    log_prob = dist.log_prob(torch.tensor([1.0, 0.5]))
    # Kumaraswamy(2, 2): p(x) = 4x(1 - x^2), 1.5 at x = 1/2
    torch.testing.assert_close(log_prob, torch.tensor([np.log(0.75), np.log(1.5)]).float())
    # H(1/4, 3/4); H(Kumaraswamy(2, 2)) = (1 - 1/2) + (1 - 1/2) H_2 - ln 4, H_2 = 1 + 1/2
    entropy = [-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)), 0.5 + 0.5 * 1.5 - np.log(4)]
    torch.testing.assert_close(dist.entropy(), torch.tensor(entropy).float())
    torch.testing.assert_close(dist.mode(), torch.tensor([1.0, np.sqrt(1 / 3)]).float())  # ((a-1)/(ab-1))^(1/a)
    drawn = dist.sample(torch.Generator().manual_seed(0))
    assert drawn[0] in (0.0, 1.0) and 0.0 < drawn[1] < 1.0
    choices, values = head.to_env(drawn, dist)
    assert choices.tolist() == [int(drawn[0]), 0] and values[:, 0].tolist() == [0.0, pytest.approx(float(drawn[1]))]


def test_an_action_space_the_heads_cannot_act_on_is_refused_naming_the_ones_they_can():
    with pytest.raises(TypeError, match=r"ppo needs a Discrete action space, a Box of one value in \[0, 1\]"):
        ActionHead(gym.make("Pendulum-v1").action_space, "ppo")
