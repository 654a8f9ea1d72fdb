"""Two-layer Deep Inverse Prior (DIP) network with a fixed second layer (spec ``dip.md`` §2-§7).

The generator is ``g(u, W) = V phi(W u) / sqrt(k)`` with a fixed input ``u`` on the unit sphere of
``R^d``, trained first layer ``W`` (``k x d``) and fixed second layer ``V`` (``n x k``). The objective
is ``f(W) = L_y(A g(u, W))`` for a radial loss ``L_y(v) = h(||v - y||)`` (MSE, power, radial Huber).

By Lemma D0, gradient descent and gradient flow keep ``W(t) = W_0 + a(t) u^T``, so everything is
integrated in the ``k``-dimensional pre-activation space ``z = W u``; the ``W``-space update is kept
for the self-check. Jacobian products never form the ``n x kd`` Jacobian (except
:func:`jacobian_dense`, for tests on tiny sizes); ``sigma_min(J)`` comes from the ``n x n`` Gram
matrix ``K = ||u||^2/k V diag(phi'(z)^2) V^T`` (Lemma D1(iii)).

This module never imports ``bounds`` or ``verification``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import expit

from dynamics._validate import as_matrix, choice, positive_int, real
from dynamics.errors import DivergenceError

ACTIVATION_NAMES = ("sigmoid", "tanh", "softplus", "relu")
V_LAWS = ("rademacher", "uniform")
LOSS_NAMES = ("mse", "power", "huber")
RECORD_NAMES = ("loss", "fit_error", "drift", "path_length", "sigma_min", "signal_error")
"""Trajectory records: ``f``, ``||y(t) - y||``, ``||theta(t) - theta_0||``, path length,
``sigma_min(J(theta(t)))`` and ``||x(t) - x_bar||``."""

# Spec §10.3: sigma_min is reported as 0 when lambda_min(K) < 1e-12 lambda_max(K) (below the
# float64 resolution of eigvalsh relative to the spectrum's scale).
SIGMA_FLOOR_RATIO = 1e-12


# --------------------------------------------------------------------------------------------
# activations


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation with its first two derivatives, all in overflow-free forms.

    Attributes
    ----------
    name : str
        One of :data:`ACTIVATION_NAMES`.
    phi, dphi, d2phi : callable
        Elementwise ``phi``, ``phi'`` and ``phi''`` on float arrays. For ReLU, ``phi'(0) := 0``
        (spec §3.5) and ``phi'' := 0`` almost everywhere (``phi'`` is discontinuous at 0).
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    d2phi: Callable[[np.ndarray], np.ndarray]
    both: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None

    def phi_dphi(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(phi(x), phi'(x))``, sharing one transcendental evaluation where the formulas allow
        (tanh, sigmoid); the values equal ``phi(x)`` and ``dphi(x)`` bitwise."""
        if self.both is not None:
            return self.both(x)
        return self.phi(x), self.dphi(x)


def _sig_d1(x):
    s = expit(x)
    return s * (1.0 - s)


def _sig_d2(x):
    s = expit(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _tanh_d1(x):
    t = np.tanh(x)
    return 1.0 - t * t


def _tanh_d2(x):
    t = np.tanh(x)
    return -2.0 * t * (1.0 - t * t)


def _sig_both(x):
    s = expit(x)
    return s, s * (1.0 - s)


def _tanh_both(x):
    t = np.tanh(x)
    return t, 1.0 - t * t


_ACTIVATIONS = {
    "sigmoid": Activation("sigmoid", expit, _sig_d1, _sig_d2, _sig_both),
    "tanh": Activation("tanh", np.tanh, _tanh_d1, _tanh_d2, _tanh_both),
    # logaddexp(0, x) = log(1 + e^x) without overflow for large x or cancellation for x << 0.
    "softplus": Activation("softplus", lambda x: np.logaddexp(0.0, x), expit, _sig_d1),
    "relu": Activation("relu", lambda x: np.maximum(x, 0.0), lambda x: (np.asarray(x) > 0.0) * 1.0,
                       lambda x: np.zeros_like(np.asarray(x, dtype=np.float64))),
}


def activation(name: str) -> Activation:
    """Return the :class:`Activation` called ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`ACTIVATION_NAMES`.
    """
    if not isinstance(name, str):
        raise ValueError(f"activation: expected a name, got {name!r}")
    return _ACTIVATIONS[choice("activation", name, ACTIVATION_NAMES)]


# --------------------------------------------------------------------------------------------
# losses


@dataclasses.dataclass(frozen=True)
class RadialLoss:
    """A radial loss ``L_y(v) = h(||v - y||)`` with its desingularizing function (spec §4.3).

    Attributes
    ----------
    name : str
        ``"mse"`` (``h = rho^2/2``), ``"power"`` (``h = rho^p/p``) or ``"huber"`` (radial Huber).
    p : float
        Exponent of the power loss (2 for MSE; unused for Huber).
    delta : float
        Huber threshold ``delta_H`` (unused otherwise).
    """

    name: str
    p: float = 2.0
    delta: float = 1.0

    # ---- the profile h and its derivative
    def h(self, rho):
        """``h(rho)`` for ``rho >= 0``."""
        rho = np.asarray(rho, dtype=np.float64)
        if self.name == "mse":
            return 0.5 * rho * rho
        if self.name == "power":
            return rho ** self.p / self.p
        d = self.delta
        return np.where(rho <= d, 0.5 * rho * rho, d * rho - 0.5 * d * d)

    def dh(self, rho):
        """``h'(rho)``."""
        rho = np.asarray(rho, dtype=np.float64)
        if self.name == "mse":
            return rho
        if self.name == "power":
            return rho ** (self.p - 1.0)
        return np.minimum(rho, self.delta)

    # ---- loss, gradient, KL quantities
    def value(self, v, y):
        """``L_y(v)``; ``v`` may carry leading batch axes, ``y`` broadcasts against it."""
        return self.h(np.linalg.norm(np.asarray(v) - np.asarray(y), axis=-1))

    def gradient(self, v, y):
        """``nabla L_y(v) = h'(rho) (v - y) / rho`` (and 0 at ``v = y``)."""
        r = np.asarray(v, dtype=np.float64) - np.asarray(y, dtype=np.float64)
        if self.name == "mse":
            return r
        rho = np.linalg.norm(r, axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(rho > 0.0, self.dh(rho) / np.where(rho > 0.0, rho, 1.0), 0.0)
        return scale * r

    def psi(self, s):
        """Desingularizing function ``psi = h^{-1}`` (so ``psi(L_y(v)) = ||v - y||``)."""
        s = np.asarray(s, dtype=np.float64)
        if self.name == "mse":
            return np.sqrt(2.0 * s)
        if self.name == "power":
            return (self.p * s) ** (1.0 / self.p)
        d = self.delta
        return np.where(s <= 0.5 * d * d, np.sqrt(2.0 * s), (s + 0.5 * d * d) / d)

    def dpsi(self, s):
        """``psi'(s) = 1 / h'(psi(s))`` for ``s > 0``."""
        s = np.asarray(s, dtype=np.float64)
        if self.name == "mse":
            return 1.0 / np.sqrt(2.0 * s)
        if self.name == "power":
            return (self.p * s) ** (1.0 / self.p - 1.0)
        d = self.delta
        return np.where(s <= 0.5 * d * d, 1.0 / np.sqrt(2.0 * np.maximum(s, 0.0)), 1.0 / d)

    def Psi(self, s):
        """A primitive of ``-(psi')^2`` (the additive constants of spec §4.3)."""
        s = np.asarray(s, dtype=np.float64)
        if self.name == "mse" or (self.name == "power" and self.p == 2.0):
            return -0.5 * np.log(s)
        if self.name == "power":
            p = self.p
            return p ** (2.0 / p - 1.0) / (p - 2.0) * s ** ((2.0 - p) / p)
        d2 = 0.5 * self.delta ** 2
        return np.where(s <= d2, -0.5 * np.log(s), -0.5 * np.log(d2) - (s - d2) / self.delta ** 2)


def make_loss(name: str = "mse", *, p: float = 2.0, delta: float = 1.0) -> RadialLoss:
    """Build a :class:`RadialLoss`.

    Parameters
    ----------
    name : {"mse", "power", "huber"}
        The loss.
    p : float
        Power-loss exponent, ``p > 1`` (``p < 2`` is gradient-flow only, spec §4.3).
    delta : float
        Huber threshold, ``> 0``.

    Raises
    ------
    ValueError
        On an unknown name, ``p <= 1`` or ``delta <= 0``.
    """
    if not isinstance(name, str):
        raise ValueError(f"name: expected a loss name, got {name!r}")
    choice("name", name, LOSS_NAMES)
    p = real("p", p, minimum=1.0, strict=True)
    delta = real("delta", delta, minimum=0.0, strict=True)
    if name == "mse":
        p = 2.0
    return RadialLoss(name, p, delta)


# --------------------------------------------------------------------------------------------
# instances


@dataclasses.dataclass(frozen=True, eq=False)
class DIPInstance:
    """One DIP problem: network (``u, W0, V, activation``) and data (``A, x_bar, eps, y``).

    Attributes
    ----------
    u : ndarray (d,)
    W0 : ndarray (k, d)
    V : ndarray (n, k)
    A : ndarray (m, n)
    x_bar, eps, y : ndarray
        Signal ``(n,)``, noise ``(m,)`` and data ``y = A x_bar + eps``.
    activation : str
    seed : int or None
        The seed it was built from (``None`` for hand-built instances).
    """

    u: np.ndarray
    W0: np.ndarray
    V: np.ndarray
    A: np.ndarray
    x_bar: np.ndarray
    eps: np.ndarray
    y: np.ndarray
    activation: str
    seed: int | None = None

    @property
    def n(self) -> int:
        return self.V.shape[0]

    @property
    def k(self) -> int:
        return self.V.shape[1]

    @property
    def d(self) -> int:
        return self.u.shape[0]

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def z0(self) -> np.ndarray:
        """Pre-activations at initialization, ``W0 u``."""
        return self.W0 @ self.u


def _vector(name, value, size=None):
    arr = as_matrix(name, value, ndim=(1,))
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name}: expected length {size}, got {arr.shape[0]}")
    return arr


def build_instance(u, W0, V, A, y, *, activation: str = "tanh", x_bar=None, eps=None,
                   seed: int | None = None, require_kd: bool = True) -> DIPInstance:
    """Validate explicit arrays into a :class:`DIPInstance`.

    Parameters
    ----------
    u, W0, V, A, y : array_like
        Input ``(d,)`` (non-zero), weights ``(k, d)``, second layer ``(n, k)``, operator ``(m, n)``,
        data ``(m,)``.
    activation : str
        One of :data:`ACTIVATION_NAMES`.
    x_bar, eps : array_like, optional
        Signal and noise; ``x_bar`` defaults to zeros and ``eps`` to ``y - A x_bar``.
    seed : int, optional
        Recorded for reproducibility.
    require_kd : bool
        Reject ``k d < n``: the Jacobian (``n x kd``) then cannot have rank ``n``.

    Raises
    ------
    ValueError
        On non-finite entries, inconsistent shapes, ``u = 0``, ``k d < n`` or an unknown activation.
    """
    activation_obj = globals()["activation"](activation)
    u = _vector("u", u)
    if not np.linalg.norm(u) > 0.0:
        raise ValueError("u: must be non-zero")
    W0 = as_matrix("W0", W0)
    V = as_matrix("V", V)
    A = as_matrix("A", A)
    k, d = W0.shape
    n = V.shape[0]
    if d != u.shape[0]:
        raise ValueError(f"W0: expected {u.shape[0]} columns (len(u)), got shape {W0.shape}")
    if V.shape[1] != k:
        raise ValueError(f"V: expected {k} columns (rows of W0), got shape {V.shape}")
    if A.shape[1] != n:
        raise ValueError(f"A: expected {n} columns (rows of V), got shape {A.shape}")
    if require_kd and k * d < n:
        raise ValueError(f"W0: k d = {k * d} < n = {n}, so J can never have rank n")
    y = _vector("y", y, A.shape[0])
    x_bar = np.zeros(n) if x_bar is None else _vector("x_bar", x_bar, n)
    eps = y - A @ x_bar if eps is None else _vector("eps", eps, A.shape[0])
    return DIPInstance(u, W0, V, A, x_bar, eps, y, activation_obj.name, seed)


def make_instance(n: int, m: int, k: int, d: int, seed: int, *, activation: str = "tanh",
                  v_law: str = "rademacher", noise: float = 0.0, signal: str = "gaussian",
                  noise_in_range: bool = False, A=None) -> DIPInstance:
    """Draw an instance from a seed (spec §3.1).

    ``u = xi/||xi||``, ``W0 ~ N(0,1)`` entries, ``V`` Rademacher or uniform on ``[-sqrt3, sqrt3]``.
    ``A`` defaults to i.i.d. ``N(0, 1/m)`` entries [choice]. ``x_bar`` is ``N(0, I_n)``
    (``signal="gaussian"``) or a teacher ``g(u, z_star u^T)`` with independent ``z_star ~ N(0, I_k)``
    (``signal="teacher"``, spec §8(b)). ``eps = noise * e`` with ``e ~ N(0, I_m)/sqrt(m)``, projected onto
    ``Im A`` if ``noise_in_range``.

    Parameters
    ----------
    n, m, k, d : int
        Signal, data, width and input dimensions (``k d >= n``).
    seed : int
        Seed of a ``numpy.random.Generator`` (PCG64).
    activation, v_law, signal : str
        See above.
    noise : float
        Noise scale ``>= 0``.
    noise_in_range : bool
        Draw ``eps`` in ``Im A`` (spec §4.4, power/Huber losses with ``m > n``).
    A : array_like, optional
        A fixed operator ``(m, n)`` instead of the Gaussian one.

    Raises
    ------
    ValueError
        On bad sizes (including ``k d < n``), unknown names or negative noise.
    """
    n = positive_int("n", n)
    m = positive_int("m", m)
    k = positive_int("k", k)
    d = positive_int("d", d)
    seed = positive_int("seed", seed, minimum=0)
    activation_obj = globals()["activation"](activation)
    choice("v_law", v_law, V_LAWS)
    choice("signal", signal, ("gaussian", "teacher"))
    noise = real("noise", noise, minimum=0.0)
    if k * d < n:
        raise ValueError(f"k: k d = {k * d} < n = {n}, so J can never have rank n")
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal(d)
    u = xi / np.linalg.norm(xi)
    W0 = rng.standard_normal((k, d))
    if v_law == "rademacher":
        V = rng.choice(np.array([-1.0, 1.0]), size=(n, k))
    else:
        V = rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), size=(n, k))
    if A is None:
        A = rng.standard_normal((m, n)) / math.sqrt(m)
    else:
        A = as_matrix("A", A)
        if A.shape != (m, n):
            raise ValueError(f"A: expected shape {(m, n)}, got {A.shape}")
    if signal == "gaussian":
        x_bar = rng.standard_normal(n)
    else:
        x_bar = V @ activation_obj.phi(rng.standard_normal(k)) / math.sqrt(k)
    e = rng.standard_normal(m) / math.sqrt(m)
    if noise_in_range:
        Q, s, _ = np.linalg.svd(A, full_matrices=False)
        Q = Q[:, s > s[0] * max(m, n) * np.finfo(float).eps]
        e = Q @ (Q.T @ e)
    eps = noise * e
    return DIPInstance(u, W0, V, A, x_bar, eps, A @ x_bar + eps, activation_obj.name, seed)


# --------------------------------------------------------------------------------------------
# network, Jacobian products, Gram matrix (Lemma D1)


def generator(inst: DIPInstance, W=None, *, z=None) -> np.ndarray:
    """``g(u, W) = V phi(W u)/sqrt(k)``, from ``W`` (``(..., k, d)``) or pre-activations ``z``."""
    z = _preact(inst, W, z)
    return activation(inst.activation).phi(z) @ inst.V.T / math.sqrt(inst.k)


def _preact(inst, W, z):
    if z is not None:
        return np.asarray(z, dtype=np.float64)
    if W is None:
        return inst.z0
    return np.asarray(W, dtype=np.float64) @ inst.u


def jvp(inst: DIPInstance, W, Delta) -> np.ndarray:
    """``J(W) Delta = V (phi'(z) * Delta u)/sqrt(k)`` (Lemma D1(i)), without forming ``J``."""
    z = _preact(inst, W, None)
    return (activation(inst.activation).dphi(z) * (np.asarray(Delta) @ inst.u)) @ inst.V.T / math.sqrt(inst.k)


def vjp(inst: DIPInstance, W, w) -> np.ndarray:
    """``J(W)^T w = (phi'(z) * V^T w) u^T / sqrt(k)`` (Lemma D1(ii)), shape ``(..., k, d)``."""
    b = _vjp_z(inst, _preact(inst, W, None), w)
    return b[..., :, None] * inst.u


def _vjp_z(inst, z, w):
    """The ``k``-vector ``b`` with ``J^T w = b u^T``."""
    return activation(inst.activation).dphi(z) * (np.asarray(w) @ inst.V) / math.sqrt(inst.k)


def jacobian_dense(inst: DIPInstance, W=None) -> np.ndarray:
    """The explicit ``n x kd`` Jacobian (row-major ``vec(W)``); for tests on tiny sizes only."""
    z = _preact(inst, W, None)
    left = inst.V * activation(inst.activation).dphi(z) / math.sqrt(inst.k)
    return np.kron(left, inst.u[None, :])


def gram(inst: DIPInstance, W=None, *, z=None) -> np.ndarray:
    """``K = J J^T = ||u||^2/k V diag(phi'(z)^2) V^T`` (Lemma D1(iii)), shape ``(..., n, n)``."""
    z = _preact(inst, W, z)
    dp = activation(inst.activation).dphi(z)
    Vs = inst.V * dp[..., None, :]
    return float(inst.u @ inst.u) / inst.k * (Vs @ np.swapaxes(Vs, -1, -2))


def sigma_min_jacobian(inst: DIPInstance, W=None, *, z=None) -> np.ndarray | float:
    """``sigma_min(J) = sigma_n(J) = sqrt(lambda_min(K))``.

    Exactly 0 if ``k < n`` (Lemma D1(iv): ``rank J <= k``) and 0 when ``lambda_min < 1e-12 lambda_max``
    (spec §10.3 floor).
    """
    K = gram(inst, W, z=z)
    if inst.k < inst.n:
        return np.zeros(K.shape[:-2]) if K.ndim > 2 else 0.0
    lam = np.linalg.eigvalsh(K)
    lo, hi = lam[..., 0], lam[..., -1]
    out = np.where(lo < SIGMA_FLOOR_RATIO * hi, 0.0, np.sqrt(np.maximum(lo, 0.0)))
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# objective and gradient


def objective(inst: DIPInstance, loss: RadialLoss, W=None, *, z=None):
    """``f = L_y(A g(u, W))``."""
    return loss.value(generator(inst, W, z=z) @ inst.A.T, inst.y)


def gradient(inst: DIPInstance, loss: RadialLoss, W) -> np.ndarray:
    """``nabla_W f = (phi'(z) * V^T A^T nabla L_y)/sqrt(k) u^T`` (Lemma D1(ii)), shape of ``W``."""
    W = np.asarray(W, dtype=np.float64)
    z = W @ inst.u
    return _grad_z_coeff(inst, loss, z)[..., :, None] * inst.u


def _grad_z_coeff(inst, loss, z):
    v = generator(inst, z=z) @ inst.A.T
    return _vjp_z(inst, z, loss.gradient(v, inst.y) @ inst.A)


def z_velocity(inst: DIPInstance, loss: RadialLoss, z) -> np.ndarray:
    """Right-hand side of the Lemma D0 flow.

    ``dz/dt = -||u||^2/sqrt(k) phi'(z) * V^T A^T nabla L_y(A V phi(z)/sqrt k)``.
    """
    return -float(inst.u @ inst.u) * _grad_z_coeff(inst, loss, np.asarray(z, dtype=np.float64))


def gd_step(inst: DIPInstance, loss: RadialLoss, W, gamma: float) -> np.ndarray:
    """One ``W``-space gradient step ``W - gamma nabla f(W)``."""
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    return np.asarray(W, dtype=np.float64) - gamma * gradient(inst, loss, W)


def gd_step_z(inst: DIPInstance, loss: RadialLoss, z, gamma: float) -> np.ndarray:
    """One step of the reduced GD recursion ``z + gamma * z_velocity(z)`` (Lemma D0)."""
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    z = np.asarray(z, dtype=np.float64)
    return z + gamma * z_velocity(inst, loss, z)


# --------------------------------------------------------------------------------------------
# trajectories


@dataclasses.dataclass
class Trajectory:
    """A recorded trajectory.

    Attributes
    ----------
    times : ndarray (n_records,)
        Iterations (GD) or times (GF).
    records : dict of str -> ndarray (n_records,)
        See :data:`RECORD_NAMES`.
    z : ndarray (k,)
        Final pre-activations (``W = W0 + (z - z0) u^T / ||u||^2``).
    W : ndarray (k, d) or None
        Final weights of a ``W``-space run.
    solution : object or None
        The ``solve_ivp`` result of a flow run (``.sol`` is the dense output of ``(z, path_length)``).
    """

    times: np.ndarray
    records: dict
    z: np.ndarray
    W: np.ndarray | None = None
    solution: object = None


def weights_from_z(inst: DIPInstance, z) -> np.ndarray:
    """``W = W0 + (z - z0) u^T / ||u||^2`` (Lemma D0)."""
    return inst.W0 + np.multiply.outer(np.asarray(z) - inst.z0, inst.u) / float(inst.u @ inst.u)


def _record(inst, loss, z, path_length, with_sigma=True):
    x = generator(inst, z=z)
    v = x @ inst.A.T
    return {
        "loss": float(loss.value(v, inst.y)),
        "fit_error": float(np.linalg.norm(v - inst.y)),
        "drift": float(np.linalg.norm(z - inst.z0) / np.linalg.norm(inst.u)),
        "path_length": float(path_length),
        "sigma_min": float(sigma_min_jacobian(inst, z=z)) if with_sigma else float("nan"),
        "signal_error": float(np.linalg.norm(x - inst.x_bar)),
    }


def run_gd(inst: DIPInstance, loss: RadialLoss, gamma: float, n_steps: int, *, record_every: int = 1,
           space: str = "z", divergence_factor: float = 1e6) -> Trajectory:
    """Gradient descent ``theta_{tau+1} = theta_tau - gamma nabla f(theta_tau)`` from ``W0``.

    Parameters
    ----------
    inst, loss : DIPInstance, RadialLoss
    gamma : float
        Step size, ``> 0``.
    n_steps : int
        Number of steps (``>= 0``).
    record_every : int
        Record every that many steps (and the last step).
    space : {"z", "W"}
        Iterate the reduced recursion (default) or the full ``W``-space update (self-check).
    divergence_factor : float
        Raise :class:`DivergenceError` once ``f > divergence_factor * max(L_0, 1)``.

    Returns
    -------
    Trajectory
        Path length is ``sum ||theta_{s+1} - theta_s||`` (``= ||z_{s+1} - z_s||/||u||``).

    Raises
    ------
    ValueError
        On ``gamma <= 0`` or bad counts.
    DivergenceError
        On a non-finite state or a loss above the divergence threshold.
    """
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    n_steps = positive_int("n_steps", n_steps, minimum=0)
    record_every = positive_int("record_every", record_every)
    choice("space", space, ("z", "W"))
    divergence_factor = real("divergence_factor", divergence_factor, minimum=1.0, strict=True)
    u_norm = float(np.linalg.norm(inst.u))
    z = inst.z0.copy()
    W = inst.W0.copy() if space == "W" else None
    ell = 0.0
    rec = _record(inst, loss, z, ell)
    threshold = divergence_factor * max(rec["loss"], 1.0)
    times, rows = [0], [rec]
    for tau in range(1, n_steps + 1):
        if space == "z":
            z_new = gd_step_z(inst, loss, z, gamma)
            step = np.linalg.norm(z_new - z) / u_norm
        else:
            W_new = gd_step(inst, loss, W, gamma)
            step = np.linalg.norm(W_new - W)
            W, z_new = W_new, W_new @ inst.u
        if not (np.all(np.isfinite(z_new)) and np.isfinite(step)):
            raise DivergenceError(tau, "non-finite state", rows[-1], [0])
        z, ell = z_new, ell + step
        last = tau == n_steps
        if tau % record_every == 0 or last:
            rec = _record(inst, loss, z, ell)
            if not np.isfinite(rec["loss"]) or rec["loss"] > threshold:
                raise DivergenceError(tau, f"loss {rec['loss']:.3e} above {threshold:.3e}", rows[-1], [0])
            times.append(tau)
            rows.append(rec)
    records = {name: np.array([r[name] for r in rows]) for name in RECORD_NAMES}
    return Trajectory(np.array(times, dtype=float), records, z, W)


class _TooManyEvaluations(Exception):
    pass


FLOW_MAX_NFEV = 1_000_000
"""Right-hand-side evaluations after which an explicit flow run switches to LSODA (spec §10.2)."""


def run_flow(inst: DIPInstance, loss: RadialLoss, t_max: float, *, t_eval: Sequence[float] | None = None,
             method: str = "DOP853", rtol: float = 1e-10, atol: float = 1e-12,
             stop_ratio: float | None = 1e-9, max_nfev: int = FLOW_MAX_NFEV) -> Trajectory:
    """Gradient flow of Lemma D0 by ``scipy.integrate.solve_ivp``, with the path length as a state.

    Parameters
    ----------
    inst, loss : DIPInstance, RadialLoss
    t_max : float
        Horizon, ``> 0``.
    t_eval : sequence of float, optional
        Record times in ``[0, t_max]``; default: 400-point linear grid united with a 100-point log grid.
    method : str
        ``solve_ivp`` method. ``DOP853`` (default, spec §10.2) is explicit and needs no Jacobian: at
        ``k = 4096`` it integrates to the early-stopping time in ~0.4 s where ``LSODA`` builds dense
        ``k x k`` Jacobians and takes 10-20 s. ``LSODA`` switches to BDF when saturated activations
        make the system stiff, ``Radau``/``BDF`` are implicit.
    max_nfev : int
        If an explicit method needs more right-hand-side evaluations than this (a stiff system), the
        run is redone with ``LSODA``; ``solution.method`` says which method produced the result.
    rtol, atol : float
        Tolerances (default ``1e-10`` / ``1e-12``, spec §10.2).
    stop_ratio : float or None
        Terminal event at ``||r|| <= stop_ratio ||r_0||`` (``None`` disables it).

    Returns
    -------
    Trajectory
        Records at the reached ``t_eval`` points; ``solution.sol`` is the dense output.

    Raises
    ------
    ValueError
        On bad arguments.
    DivergenceError
        If the integrator fails (non-finite state).
    """
    t_max = real("t_max", t_max, minimum=0.0, strict=True)
    choice("method", method, ("LSODA", "DOP853", "RK45", "Radau", "BDF"))
    rtol = real("rtol", rtol, minimum=0.0, strict=True)
    atol = real("atol", atol, minimum=0.0, strict=True)
    if t_eval is None:
        t_eval = np.union1d(np.linspace(0.0, t_max, 400), np.geomspace(t_max * 1e-6, t_max, 100))
    t_eval = np.asarray(t_eval, dtype=np.float64)
    if t_eval.ndim != 1 or not np.all(np.isfinite(t_eval)) or t_eval.min() < 0 or t_eval.max() > t_max:
        raise ValueError("t_eval: must be finite times in [0, t_max]")
    t_eval = np.unique(t_eval)
    k = inst.k
    u_norm = float(np.linalg.norm(inst.u))

    max_nfev = positive_int("max_nfev", max_nfev)
    calls = [0]

    def rhs(_t, state):
        calls[0] += 1
        if calls[0] > max_nfev:
            raise _TooManyEvaluations
        dz = z_velocity(inst, loss, state[:k])
        return np.append(dz, np.linalg.norm(dz) / u_norm)

    events = None
    if stop_ratio is not None:
        r0 = float(np.linalg.norm(generator(inst) @ inst.A.T - inst.y))
        target = real("stop_ratio", stop_ratio, minimum=0.0) * r0

        def reached(_t, state):
            return np.linalg.norm(generator(inst, z=state[:k]) @ inst.A.T - inst.y) - target
        reached.terminal = True
        events = [reached]
    def solve(which):
        return solve_ivp(rhs, (0.0, t_max), np.append(inst.z0, 0.0), method=which, t_eval=t_eval,
                         rtol=rtol, atol=atol, dense_output=True, events=events)

    try:
        sol = solve(method)
    except _TooManyEvaluations:
        if method in ("LSODA", "Radau", "BDF"):
            raise DivergenceError(max_nfev, f"{method} needed more than {max_nfev} evaluations", {},
                                  [0]) from None
        calls[0] = 0
        method = "LSODA"
        sol = solve(method)
    sol.method = method
    if sol.status == -1 or not np.all(np.isfinite(sol.y)):
        raise DivergenceError(len(sol.t), f"solve_ivp failed: {sol.message}", {}, [0])
    rows = [_record(inst, loss, sol.y[:k, j], sol.y[k, j]) for j in range(sol.t.size)]
    records = {name: np.array([r[name] for r in rows]) for name in RECORD_NAMES}
    return Trajectory(sol.t.copy(), records, sol.y[:k, -1].copy() if sol.t.size else inst.z0.copy(),
                      None, sol)


def _stack(instances: Sequence[DIPInstance]):
    if len(instances) == 0:
        raise ValueError("instances: expected at least one instance")
    first = instances[0]
    shape = (first.n, first.m, first.k, first.d, first.activation)
    for i, inst in enumerate(instances):
        if (inst.n, inst.m, inst.k, inst.d, inst.activation) != shape:
            raise ValueError(f"instances: member {i} has sizes/activation "
                             f"{(inst.n, inst.m, inst.k, inst.d, inst.activation)}, expected {shape}")
    return {name: np.stack([getattr(inst, name) for inst in instances])
            for name in ("u", "V", "A", "y", "x_bar")} | {"z0": np.stack([inst.z0 for inst in instances])}


def run_gd_batch(instances: Sequence[DIPInstance], loss: RadialLoss, gamma, n_steps: int, *,
                 record_every: int = 1, divergence_factor: float = 1e6) -> Trajectory:
    """:func:`run_gd` (``z``-space) for a batch of instances sharing ``(n, m, k, d, activation)``.

    The batch advances with one set of batched products per step. Records have shape
    ``(n_records, B)`` and ``Trajectory.z`` has shape ``(B, k)``. ``gamma`` is one step for the
    whole batch or one per member (shape ``(B,)``, e.g. each member's ``1/L_nabla``).

    Raises
    ------
    ValueError
        On an empty or inhomogeneous batch, or bad arguments as in :func:`run_gd`.
    DivergenceError
        With the indices of every diverged member.
    """
    if np.ndim(gamma) == 0:
        gamma = real("gamma", gamma, minimum=0.0, strict=True)
    else:
        gamma = np.asarray(gamma, dtype=np.float64)
        if gamma.shape != (len(instances),) or not np.all(np.isfinite(gamma)) or np.any(gamma <= 0):
            raise ValueError(f"gamma: need a positive finite step or one per instance, shape "
                             f"({len(instances)},), got {gamma!r}")
    n_steps = positive_int("n_steps", n_steps, minimum=0)
    record_every = positive_int("record_every", record_every)
    divergence_factor = real("divergence_factor", divergence_factor, minimum=1.0, strict=True)
    S = _stack(instances)
    act = activation(instances[0].activation)
    sqk = math.sqrt(instances[0].k)
    u_sq = np.einsum("bd,bd->b", S["u"], S["u"])
    # The per-step work is O(B n k) elementwise, so every k-sized pass counts: V/sqrt(k) is formed
    # once, phi and phi' share one tanh/expit evaluation (bitwise the same values), the products
    # are stacked matrix-vector matmuls, and the step -gamma ||u||^2 is applied to the n-vector
    # before it is spread over k entries.
    Vk = S["V"] / sqk
    VkT = np.ascontiguousarray(np.swapaxes(Vk, -1, -2))
    At = np.ascontiguousarray(np.swapaxes(S["A"], -1, -2))
    step_scale = (-gamma * u_sq)[:, None]

    def outputs(z, phi_z=None):
        x = (Vk @ (act.phi(z) if phi_z is None else phi_z)[..., None])[..., 0]
        return x, (S["A"] @ x[..., None])[..., 0]

    def step(z):
        phi_z, dphi_z = act.phi_dphi(z)
        _, v = outputs(z, phi_z)
        w = (At @ loss.gradient(v, S["y"])[..., None])[..., 0] * step_scale
        dz = (VkT @ w[..., None])[..., 0]
        dz *= dphi_z
        return dz

    def record(z, ell):
        x, v = outputs(z)
        Vs = S["V"] * act.dphi(z)[:, None, :]
        K = u_sq[:, None, None] / instances[0].k * (Vs @ np.swapaxes(Vs, -1, -2))
        if instances[0].k < instances[0].n:
            sig = np.zeros(len(instances))
        else:
            lam = np.linalg.eigvalsh(K)
            lo = lam[:, 0]
            sig = np.where(lo < SIGMA_FLOOR_RATIO * lam[:, -1], 0.0, np.sqrt(np.maximum(lo, 0.0)))
        return {"loss": loss.value(v, S["y"]), "fit_error": np.linalg.norm(v - S["y"], axis=-1),
                "drift": np.linalg.norm(z - S["z0"], axis=-1) / np.sqrt(u_sq), "path_length": ell.copy(),
                "sigma_min": sig, "signal_error": np.linalg.norm(x - S["x_bar"], axis=-1)}

    z = S["z0"].copy()
    ell = np.zeros(len(instances))
    rec = record(z, ell)
    threshold = divergence_factor * np.maximum(rec["loss"], 1.0)
    times, rows = [0], [rec]
    inv_u = 1.0 / np.sqrt(u_sq)
    for tau in range(1, n_steps + 1):
        dz = step(z)
        # A NaN or inf anywhere in dz makes its norm non-finite, so checking the B step lengths
        # replaces a scan of the whole B x k state.
        step_len = np.sqrt(np.einsum("bk,bk->b", dz, dz)) * inv_u
        bad = ~np.isfinite(step_len)
        if np.any(bad):
            raise DivergenceError(tau, "non-finite state", rows[-1], [int(i) for i in np.flatnonzero(bad)])
        z += dz
        ell = ell + step_len
        if tau % record_every == 0 or tau == n_steps:
            rec = record(z, ell)
            over = ~(rec["loss"] <= threshold)
            if np.any(over):
                raise DivergenceError(tau, "loss above divergence threshold", rows[-1],
                                      [int(i) for i in np.flatnonzero(over)])
            times.append(tau)
            rows.append(rec)
    records = {name: np.stack([r[name] for r in rows]) for name in RECORD_NAMES}
    return Trajectory(np.array(times, dtype=float), records, z, None)
