"""Differentiable one-shot search: the relaxations against hand-computed values, the mixed
supernet, DARTS' first- and second-order gradients against finite differences, the derived
cells, and train.py agent=darts|gdas|snas end to end with a SIGKILL in the middle."""

import json
import math
import os
import signal
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rlnas.agents import make_agent
from rlnas.agents.darts import parameter_free_fraction, unrolled_gradient
from rlnas.core import checkpoint
from rlnas.data.datasets import load_digits
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.networks.relaxations import entmax15, gumbel_softmax, relax, sparsemax
from rlnas.networks.supernet import Supernet
from rlnas.spaces import NASNetSpace, NB201Space
from tests.test_train import ROOT, train
from tests.waiting import wait_until

D = torch.float64


# -- relaxations ----------------------------------------------------------------------------
def test_sparsemax_values_and_jacobian():
    z = torch.tensor([1.0, 0.5, -1.0], dtype=D, requires_grad=True)
    p = sparsemax(z)
    # sorted 1, 0.5, -1: 1 + 2 * 0.5 > 1.5 keeps two, 1 + 3 * (-1) > 0.5 fails; tau = (1.5 - 1) / 2
    assert p.tolist() == pytest.approx([0.75, 0.25, 0.0])
    # Jacobian on the support S = {0, 1}: I - 1 1^T / |S|, zero elsewhere
    (p * torch.tensor([1.0, 2.0, 3.0], dtype=D)).sum().backward()
    assert z.grad.tolist() == pytest.approx([1 - 1.5, 2 - 1.5, 0.0])
    assert sparsemax(torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=D)).tolist() == pytest.approx([0.25] * 4)
    assert sparsemax(torch.tensor([3.0, 0.0], dtype=D)).tolist() == [1.0, 0.0]


def test_entmax15_values():
    # z / 2 = (0.5, 0, -0.5); support {0, 1}: (0.5 - tau)^2 + tau^2 = 1 gives
    # tau = 0.25 - sqrt(7) / 4, so p = ((1 + sqrt 7) / 4)^2, ((sqrt 7 - 1) / 4)^2, 0
    p = entmax15(torch.tensor([1.0, 0.0, -1.0], dtype=D))
    r7 = math.sqrt(7)
    assert p.tolist() == pytest.approx([((1 + r7) / 4) ** 2, ((r7 - 1) / 4) ** 2, 0.0])
    assert entmax15(torch.zeros(5, dtype=D)).tolist() == pytest.approx([0.2] * 5)


@pytest.mark.parametrize("fn", [sparsemax, entmax15])
def test_sparse_maps_sum_to_one_and_have_their_exact_gradient(fn):
    z = 3 * torch.randn(6, 5, dtype=D, generator=torch.Generator().manual_seed(0))
    p = fn(z)
    assert torch.allclose(p.sum(-1), torch.ones(6, dtype=D)) and (p >= 0).all() and (p == 0).any()
    assert torch.autograd.gradcheck(fn, (z.requires_grad_(),))


def test_gumbel_straight_through_is_one_hot_forward_with_the_soft_gradient():
    logits = torch.tensor([[0.3, -0.2, 1.1, 0.0], [2.0, 0.1, -1.0, 0.5]], dtype=D, requires_grad=True)
    upstream = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.2, 0.4, -1.0, 2.0]], dtype=D)

    hard = gumbel_softmax(logits, 0.7, True, torch.Generator().manual_seed(3))
    assert ((hard == 0) | (hard == 1)).all() and hard.sum(-1).tolist() == [1.0, 1.0]
    (g_hard,) = torch.autograd.grad((hard * upstream).sum(), logits)

    soft = gumbel_softmax(logits, 0.7, False, torch.Generator().manual_seed(3))  # the same noise
    assert torch.equal(hard.argmax(-1), soft.argmax(-1)) and not ((soft == 0) | (soft == 1)).all()
    (g_soft,) = torch.autograd.grad((soft * upstream).sum(), logits)
    assert torch.allclose(g_hard, g_soft) and g_soft.abs().sum() > 0


def test_relax_refuses_unknown_names_and_noise_without_a_generator():
    with pytest.raises(ValueError, match="unknown relaxation 'max'.*softmax, gumbel, gumbel_hard"):
        relax(torch.zeros(3), "max")
    with pytest.raises(ValueError, match="pass a generator"):
        relax(torch.zeros(3), "gumbel")


# -- the mixed supernet ---------------------------------------------------------------------
def tiny(space, channels=2):
    torch.manual_seed(0)
    data = load_digits()
    model = Supernet(space, 1, 10, channels, 1).to(D)
    return model, data.train.x[:16].to(D), data.train.y[:16], data.train.x[16:32].to(D), data.train.y[16:32]


def test_one_hot_weights_run_the_selected_path():
    space = NB201Space()
    model, x, *_ = tiny(space)
    decisions = (3, 1, 0, 2, 4, 3)
    model.select(decisions)
    path = model(x)
    model.weigh({"cell": F.one_hot(torch.tensor(decisions), len(space.ops)).to(D)})
    assert torch.allclose(model(x), path)
    with pytest.raises(ValueError, match=r"weigh needs weights \{'cell': \(6, 5\)\}"):
        model.weigh({"cell": torch.zeros(5, 5)})


def loss_at(model, alpha, x, y, name="cell"):
    model.weigh({name: alpha.softmax(-1)})
    return F.cross_entropy(model(x), y)


def directional_derivatives(f, alpha, directions, h=1e-6):
    """(f(alpha + h d) - f(alpha - h d)) / 2h for each direction d: central differences."""
    out = []
    for d in directions:
        with torch.no_grad():
            alpha += h * d
            up = f().item()
            alpha -= 2 * h * d
            down = f().item()
            alpha += h * d
        out.append((up - down) / (2 * h))
    return torch.tensor(out, dtype=D)


DIRECTIONS = list(torch.randn(8, 6, 5, dtype=D, generator=torch.Generator().manual_seed(2)))


def test_first_order_gradient_matches_finite_differences():
    model, _, _, xv, yv = tiny(NB201Space())
    alpha = (0.5 * torch.randn(6, 5, dtype=D, generator=torch.Generator().manual_seed(1))).requires_grad_()
    (analytic,) = torch.autograd.grad(loss_at(model, alpha, xv, yv), alpha)
    numeric = directional_derivatives(lambda: loss_at(model, alpha, xv, yv), alpha, DIRECTIONS)
    assert torch.allclose(torch.stack([(analytic * d).sum() for d in DIRECTIONS]), numeric, rtol=1e-6, atol=1e-9)


def test_second_order_gradient_matches_finite_differences_of_the_unrolled_loss():
    model, xt, yt, xv, yv = tiny(NB201Space())
    weights = list(model.parameters())
    alpha = (0.5 * torch.randn(6, 5, dtype=D, generator=torch.Generator().manual_seed(1))).requires_grad_()
    xi = 0.5

    def unrolled_valid_loss():
        """L_val(w - xi dL_train(w, alpha)/dw, alpha), evaluated exactly."""
        with torch.enable_grad():
            step = torch.autograd.grad(loss_at(model, alpha, xt, yt), weights, allow_unused=True)
        original = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for w, g in zip(weights, step, strict=True):
                if g is not None:
                    w.sub_(xi * g)
            loss = loss_at(model, alpha, xv, yv)
            for w, w0 in zip(weights, original, strict=True):
                w.copy_(w0)
        return loss

    before = [w.detach().clone() for w in weights]
    # r: the Hessian-vector product's step, eps = r / ||dL_val/dw'||. DARTS' r = 0.01 moves a
    # net this small across ReLU kinks; the formula is checked with a step inside them.
    (analytic,) = unrolled_gradient(lambda: loss_at(model, alpha, xt, yt), lambda: loss_at(model, alpha, xv, yv),
                                    weights, [alpha], xi, r=1e-5)
    assert all(torch.equal(w, w0) for w, w0 in zip(weights, before, strict=True))  # weights restored
    numeric = directional_derivatives(unrolled_valid_loss, alpha, DIRECTIONS)
    (first_order,) = torch.autograd.grad(loss_at(model, alpha, xv, yv), alpha)

    def along(grad):
        return torch.stack([(grad * d).sum() for d in DIRECTIONS])

    assert torch.allclose(along(analytic), numeric, rtol=1e-5, atol=1e-8)
    # and the second-order term is not negligible here, so the comparison tells them apart
    assert (along(first_order) - numeric).abs().max() > 1000 * (along(analytic) - numeric).abs().max()


# -- the agents -----------------------------------------------------------------------------
def agent(name, space="nb201", **kwargs):
    return make_agent(name, NASEnv(space, "tabular" if space == "nb201" else "function",
                                   evaluator_kwargs=None if space == "nb201" else
                                   {"fn": "tests.objectives:nasnet_sep_conv_share"}), seed=0, **kwargs, preset=None)


def test_derivation_nb201_takes_the_strongest_op_per_edge():
    darts = agent("darts", epochs=1)
    with torch.no_grad():
        darts.alpha["cell"].zero_()
        for edge, op in enumerate((3, 1, 0, 2, 4, 3)):
            darts.alpha["cell"][edge, op] = 1.0
    assert darts.derive() == (3, 1, 0, 2, 4, 3)
    assert parameter_free_fraction(darts.space, darts.derive()) == pytest.approx(3 / 6)  # skip, none, avg_pool


def test_derivation_nasnet_keeps_the_two_strongest_inputs_per_block():
    darts = agent("darts", "nasnet", epochs=1)
    space: NASNetSpace = darts.space
    with torch.no_grad():
        for cell in ("normal", "reduce"):
            darts.alpha[cell].zero_()
        # normal block 2 (rows 5..8: inputs h[-2], h[-1], block 0, block 1): block 1 via
        # sep_conv_5x5 at 3.0, h[-2] via max_pool at 2.0, block 0 weaker (1.5), h[-1] nothing
        darts.alpha["normal"][5 + 3, 2] = 3.0
        darts.alpha["normal"][5 + 0, 4] = 2.0
        darts.alpha["normal"][5 + 2, 1] = 1.5
    decisions = darts.derive()
    block = space.cell(decisions, "normal")[2]
    assert block == (3, 0, "sep_conv_5x5", "max_pool_3x3", "add")
    assert all(b[4] == "add" for cell in ("normal", "reduce") for b in space.cell(decisions, cell))


@pytest.mark.parametrize("name, relaxation", [("darts", "softmax"), ("gdas", "gumbel_hard"), ("snas", "gumbel"),
                                              ("darts", "sparsemax"), ("darts", "entmax15")])
def test_each_relaxation_searches_and_builds_its_cell_through_the_env(name, relaxation):
    searcher = agent(name, epochs=2, relaxation=relaxation, evaluate_every=1, channels=4)
    searcher.learn(Budget(evaluations=10))
    assert searcher.epoch == 2 and len(searcher.history) == 2
    assert searcher.env.evaluations[-1].arch == searcher.history[-1]["derived"] == searcher.space.to_string(
        searcher.derive())
    for record in searcher.history:
        assert 0 <= record["entropy"] <= 1 and 0 <= record["parameter_free"] <= 1
        assert math.isfinite(record["train_loss"]) and 0 <= record["supernet_acc"] <= 1


def test_gdas_and_snas_temperature_schedules():
    gdas, snas = agent("gdas", epochs=5), agent("snas", epochs=5)
    taus = {}
    for searcher in (gdas, snas):
        taus[searcher.name] = []
        for epoch in range(5):
            searcher.epoch = epoch
            taus[searcher.name].append(searcher.tau())
    assert taus["gdas"] == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])  # linear, 10 -> 0.1
    assert taus["snas"] == pytest.approx([0.03 ** (e / 4) for e in range(5)])  # exponential, 1 -> 0.03


def test_bad_settings_are_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match="order=2 .* relaxation='gumbel_hard' samples new noise"):
        agent("gdas", order=2)
    with pytest.raises(ValueError, match="relaxation"):
        agent("darts", relaxation="argmax")
    with pytest.raises(ValueError, match="batch_size=600 is more than half"):
        agent("darts", batch_size=600)
    with pytest.raises(ValueError, match=r"snas has no setting\(s\) \['warmup'\]; it takes relaxation, epochs"):
        agent("snas", warmup=3)


@pytest.mark.slow
def test_a_one_shot_search_counts_its_epochs_in_the_progress_bar(tmp_path):
    """Before, the bar counted evaluations: 1/200 after a 50-epoch search."""
    proc = train("agent=darts", "agent.epochs=2", "agent.channels=4", f"hydra.run.dir={tmp_path}")
    assert "2/2 [" in proc.stderr and ("epoch/s" in proc.stderr or "s/epoch" in proc.stderr)
    assert "/200" not in proc.stderr


@pytest.mark.slow
def test_train_py_darts_report_tensorboard_and_resume_after_sigkill(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["agent=darts", "env=nb201", "agent.epochs=6", "agent.evaluate_every=2", "agent.channels=4", "quiet=true"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={killed}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: (killed / "checkpoint.pt").exists()  # kill it in the middle of the schedule
               and checkpoint.load(killed / "checkpoint.pt")["agent"]["epoch"] >= 2, 120, "epoch 2's checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    epoch_at_kill = checkpoint.load(killed / "checkpoint.pt")["agent"]["epoch"]
    assert 2 <= epoch_at_kill < 6, "the run should have been killed midway"

    train(f"resume={killed}")
    train(*args, f"hydra.run.dir={whole}")
    resumed, uninterrupted = (json.loads((d / "report.json").read_text()) for d in (killed, whole))

    def schedule(report):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in report["search"]["history"]]

    assert [r["epoch"] for r in schedule(resumed)] == list(range(1, 7))
    assert schedule(resumed) == schedule(uninterrupted)  # the very schedule, continued
    assert resumed["search"]["derived"] == uninterrupted["search"]["derived"] == schedule(resumed)[-1]["derived"]
    assert resumed["best_arch"] == uninterrupted["best_arch"]  # the best of the cells built at epochs 2, 4, 6
    assert resumed["evaluations"] == len({r["derived"] for r in schedule(resumed) if r["epoch"] in (2, 4, 6)})

    events = EventAccumulator(str(whole / "tb"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for tag in ("oneshot/entropy", "oneshot/parameter_free", "oneshot/supernet_acc", "oneshot/train_loss"):
        assert [e.step for e in events.Scalars(tag)] == list(range(1, 7)), tag
    assert [e.step for e in events.Images("oneshot/arch_weights")] == list(range(1, 7))
