"""50-digit replays of the float64 dynamics, one per family, bounding the rounding drift.

The deep-linear replay is ``tests/test_dln_mpmath.py::test_replay_float64_drift_within_rounding_bound``
(the same ``gd_step`` on float64 and ``mpf`` arrays) and the DIP one is the claim
``dip.gd_trajectory_mp_reference`` (driven by ``tests/test_dip_network_claims.py``) plus
``tests/test_dip_dynamics.py::test_dip__gd_matches_mpmath_reference``. This module adds the JPO one:
full-batch Adam on the shared ``tanh`` MLP of ``dynamics/joint.py`` over four ripple problems
(spec ``jpo.md`` §7.1), replayed from the definition (forward pass, the ripple loss and its
gradient, hand-written backprop, bias-corrected Adam) in a private 50-digit context from the exact
float64 initial parameters and data.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from dynamics import joint
from dynamics import jpo_problems as jp
from verification import oracle as mpo

pytestmark = [pytest.mark.mp]

U = 2.0**-53
SIZES = (1, 8, 8, 1)
N_EXAMPLES = 4
STEPS = 30


@pytest.fixture(autouse=True)
def global_mpmath_untouched():
    before = (mpmath.mp.dps, mpmath.mp.prec)
    yield
    assert (mpmath.mp.dps, mpmath.mp.prec) == before, "a test changed the global mpmath.mp"


def _float64_run(problem, mlp, theta0):
    """The training loop's kernels step by step (``joint_gradient`` then ``Adam.step``), keeping
    ``(theta, m, v)`` after every step; :func:`dynamics.joint.train_jpo` is checked to end bitwise
    at the same parameters, so this is the training code's trajectory."""
    theta = theta0.copy()
    opt = joint.Adam(mlp.n_params)
    states = [(theta.copy(), opt.m.copy(), opt.v.copy())]
    losses = []
    for _ in range(STEPS):
        jg = joint.joint_gradient(mlp, theta, problem.inputs, problem.x0, problem.loss_and_grad)
        losses.append(jg.mean_loss)
        opt.step(theta, jg.grad)
        states.append((theta.copy(), opt.m.copy(), opt.v.copy()))
    return states, losses, opt.config


class _MPAdam:
    """Adam on the ripple MLP at the precision of ``ctx``, written from the definitions.

    Data are lifted exactly (``y``, phases, ``omega_k`` and ``amp`` are doubles); the ripple
    coefficients are the real ``amp/omega_k`` (float64 rounds them: part of the drift).
    """

    def __init__(self, ctx, problem, mlp: joint.MLP, config: joint.AdamConfig):
        self.ctx, self.mlp = ctx, mlp
        lift = self.lift
        model = problem.model
        self.omegas, self.phases, self.y = lift(jp.RIPPLE_OMEGAS), lift(model.phases), lift(model.y)
        self.amp = ctx.mpf(model.amp)
        self.coef = self.amp / self.omegas
        self.inputs, self.x0 = lift(problem.inputs), lift(problem.x0)
        self.b1, self.b2, self.lr, self.eps = (ctx.mpf(v) for v in (config.beta1, config.beta2, config.lr,
                                                                       config.eps))
        self.tanh, self.sin, self.cos, self.sqrt = (np.vectorize(f, otypes=[object])
                                                    for f in (ctx.tanh, ctx.sin, ctx.cos, ctx.sqrt))

    def lift(self, a) -> np.ndarray:
        return mpo.lift(np.asarray(a, dtype=float), self.ctx)

    def _layers(self, theta):
        out, off = [], 0
        for fan_in, fan_out in zip(self.mlp.sizes[:-1], self.mlp.sizes[1:], strict=True):
            W = theta[off:off + fan_out * fan_in].reshape(fan_out, fan_in)
            off += fan_out * fan_in
            out.append((W, theta[off:off + fan_out]))
            off += fan_out
        return out

    def gradient(self, theta):
        """``(grad J, J)`` with ``J = (1/n) sum_i [(x_i - y_i)^2 + sum_k amp/omega_k sin(omega_k x_i
        + phi_ik)]``."""
        layers = self._layers(theta)
        hs = [self.inputs]
        for W, b in layers[:-1]:
            hs.append(self.tanh(hs[-1] @ W.T + b))
        W, b = layers[-1]
        x = hs[-1] @ W.T + b + self.x0
        arg = x * self.omegas + self.phases
        r = x[:, 0] - self.y
        J = (r * r + self.sin(arg) @ self.coef).sum() / len(r)
        delta = (2 * r + self.amp * self.cos(arg).sum(axis=1))[:, None] / len(r)
        parts = []
        for ell in range(len(layers) - 1, -1, -1):
            h_prev = hs[ell]
            parts.append(np.concatenate([(delta.T @ h_prev).ravel(), delta.sum(axis=0)]))
            if ell:
                delta = (delta @ layers[ell][0]) * (1 - h_prev * h_prev)
        return np.concatenate(parts[::-1]), J

    def step(self, theta, m, v, t: int):
        """Adam step ``t`` (1-based) from ``(theta, m, v)``; returns the new state and ``J(theta)``."""
        g, J = self.gradient(theta)
        m = self.b1 * m + (1 - self.b1) * g
        v = self.b2 * v + (1 - self.b2) * g * g
        d = self.lr * (m / (1 - self.b1**t)) / (self.sqrt(v / (1 - self.b2**t)) + self.eps)
        return theta - d, m, v, J


def _inf_norm(a) -> float:
    return float(max(abs(x) for x in a.ravel()))


@pytest.fixture(scope="module")
def jpo_replay():
    problem = jp.ripple_problem(N_EXAMPLES, 1.0, 0)
    mlp = joint.MLP(SIZES)
    theta0 = mlp.init(np.random.default_rng(joint.NETWORK_SEED_OFFSET), init="lecun")
    states, losses, config = _float64_run(problem, mlp, theta0)
    trained = joint.train_jpo(problem.inputs, problem.loss_and_grad, problem.x0, sizes=SIZES, steps=STEPS,
                              record_every=1)
    return problem, mlp, states, losses, config, trained


def test_jpo__adam_replay_float64_drift_within_rounding_allowance(jpo_replay):
    problem, mlp, states, losses, config, trained = jpo_replay
    # The replayed trajectory is the training loop's own.
    assert np.array_equal(trained.theta, states[-1][0]) and np.array_equal(trained.theta0, states[0][0])
    ctx = mpo.make_context(50)
    ref = _MPAdam(ctx, problem, mlp, config)
    theta, m, v = (ref.lift(a) for a in states[0])
    drift, local, scale = [0.0], [], [float(np.max(np.abs(states[0][0])))]
    J_err = []
    for t in range(1, STEPS + 1):
        # local error of step t: one exact step from the float64 state at t - 1, lifted exactly
        th_loc, *_ = ref.step(*(ref.lift(a) for a in states[t - 1]), t)
        local.append(_inf_norm(ref.lift(states[t][0]) - th_loc))
        theta, m, v, J = ref.step(theta, m, v, t)
        J_err.append(float(abs(ctx.mpf(losses[t - 1]) - J) / abs(J)))
        drift.append(_inf_norm(ref.lift(states[t][0]) - theta))
        scale.append(float(np.max(np.abs(states[t][0]))))
    # Rounding allowance, derived per step: the float64 update theta' = fl(theta - fl(Delta)),
    # Delta = lr m_hat/(sqrt(v_hat) + eps), commits
    #   (a) u |theta'| in the final subtraction;
    #   (b) ~10 u |Delta| in Adam's own elementwise operations, with |Delta| <= lr max(1,
    #       (1 - beta1)/sqrt(1 - beta2)) = 3.2 lr (Kingma and Ba, section 2.1);
    #   (c) the gradient's rounding (forward/backward products of <= 8 terms, libm tanh/sin/cos,
    #       the rounded amp/omega_k), which the per-coordinate normalisation m_hat/sqrt(v_hat)
    #       passes on relative to |Delta|, i.e. O(10 u) lr;
    # so with lr = 1e-3 and |theta| ~ 1 the local error is at most 2 u ||theta||_inf (premise 1,
    # checked on the measured local errors). Over 30 steps theta moves by <= 30 * 3.2 lr = 0.1 and
    # the Adam map carries earlier errors forward with a factor <= 2 (premise 2, checked as
    # drift <= 2 * sum of local errors). Together:
    #     ||theta_64(t) - theta_mp(t)||_inf <= c u t scale,   c = 4, scale = max_{s <= t} ||theta_s||_inf.
    for t in range(1, STEPS + 1):
        assert local[t - 1] <= 2 * U * scale[t], f"step {t}: local error {local[t - 1]:.3g} (premise 1)"
        assert drift[t] <= 2 * sum(local[:t]) + 1e-300, f"step {t}: drift amplified (premise 2)"
        allowance = 4 * U * t * max(scale[:t + 1])
        assert drift[t] <= allowance, f"step {t}: drift {drift[t]:.3g} > allowance {allowance:.3g}"
    # J is a mean of O(1) terms from O(1) parameters: its float64 value carries the parameter drift
    # (times ||grad J|| <= ~10) plus its own ~50 u of rounding.
    assert max(J_err) <= 1e-13
    # The reference is more precise than float64: the trajectories differ, and the lift is exact.
    assert drift[-1] > 0 and drift[0] == 0
    assert any(x != ctx.mpf(mpo.to_float64(x, ctx)) for x in theta)


def test_jpo__adam_replay_reference_is_converged(jpo_replay):
    # 20 more digits move the 10-step reference by less than 1e-45 relative.
    problem, mlp, states, _, config, _ = jpo_replay
    finals = []
    for dps in (50, 70):
        ctx = mpo.make_context(dps)
        ref = _MPAdam(ctx, problem, mlp, config)
        theta, m, v = (ref.lift(a) for a in states[0])
        for t in range(1, 11):
            theta, m, v, _ = ref.step(theta, m, v, t)
        finals.append((ctx, theta))
    (c50, t50), (c70, t70) = finals
    exact50 = np.array([c70.mpf(c50.nstr(x, 55, strip_zeros=False)) for x in t50], dtype=object)
    assert _inf_norm(exact50 - t70) <= c70.mpf("1e-45") * _inf_norm(t70)
