"""Deep linear networks trained by full-batch gradient descent with weight decay.

The network is ``f(y) = W_L ... W_1 y`` with ``W_l`` of shape ``(d_l, d_{l-1})``, ``d_0 = m``,
``d_1 = ... = d_{L-1} = d_w`` and ``d_L = d``. The objective is

    F(W) = a/2 ||W_{L:1} Y - X||_F^2 + c * lam * sum_l ||W_l||_F^2,

and ``lam_bar = 2 c lam`` is the effective decay rate. The defaults ``a = 1, c = 1`` are the
objective written on the talk's slides (seed 000), the only objective an author wrote down; every
exact identity of the theory is stated in terms of ``(a, lam_bar)`` and so holds for any choice.

Everything here is pure NumPy. Arrays may carry a leading batch axis ``B``: ``X`` of shape
``(B, d, n)``, ``Y`` of shape ``(B, m, n)`` and weights of shape ``(B, d_l, d_{l-1})``; the batch then
advances with one set of batched matmuls per step.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import solve_ivp

from dynamics._validate import as_matrix, choice, positive_int, real
from dynamics.errors import DivergenceError

UPDATE_PROFILES = ("standard", "seed002_ntk")
INIT_SCHEMES = ("lecun_normal", "kaiming_normal_relu", "torch_default", "orthogonal", "balanced")
DESIGNS = ("gaussian", "prescribed_rip", "isotropic")
CONVENTIONS = {"talk": (1.0, 1.0), "pytorch_wd": (1.0, 0.5), "mean": (None, 1.0)}
"""Loss conventions ``name -> (a, c)``; ``a = None`` means ``1/n`` (data term averaged)."""

_EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------------
# data


@dataclasses.dataclass(frozen=True)
class LinearInverseData:
    """One instance of the subspace inverse problem ``x = R z``, ``y = A x``.

    Attributes
    ----------
    R : ndarray, shape (d, s)
        Orthonormal basis of the signal subspace.
    A : ndarray, shape (m, d)
        Forward operator.
    Z : ndarray, shape (s, n)
        Latent codes of the training signals.
    X : ndarray, shape (d, n)
        Training signals ``R Z``.
    Y : ndarray, shape (m, n)
        Training measurements ``A X``.
    """

    R: np.ndarray
    A: np.ndarray
    Z: np.ndarray
    X: np.ndarray
    Y: np.ndarray


def _haar_orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    # Fixing the signs of diag(r) makes the Q factor Haar distributed, not just orthonormal.
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def make_data(d: int, m: int, s: int, n: int, *, rng_operator: np.random.Generator,
              rng_codes: np.random.Generator, design: str = "gaussian", rip_delta: float = 0.1,
              beta: float = 1.0, z_log10_cond: float = 0.0) -> LinearInverseData:
    """Draw ``(R, A, Z)`` and form ``X = R Z`` and ``Y = A X``.

    Parameters
    ----------
    d, m, s, n : int
        Signal dimension, number of measurements, subspace dimension, number of samples.
        Requires ``s <= m`` (so that ``A R`` can have full column rank) and ``n >= s``.
    rng_operator, rng_codes : numpy.random.Generator
        Independent streams for ``(R, A)`` and for ``Z``.
    design : {"gaussian", "prescribed_rip", "isotropic"}
        ``gaussian``: ``A`` i.i.d. ``N(0, 1/m)``. ``prescribed_rip``: ``A R = Q D`` with the singular
        values of ``D`` spread over ``[sqrt(1 - rip_delta), sqrt(1 + rip_delta)]`` so the squared
        subspace RIP constant is exactly ``rip_delta``. ``isotropic``: Gaussian ``A`` and ``Z``
        chosen so that all ``s`` nonzero singular values of ``Y`` equal ``beta``.
    rip_delta : float
        RIP constant of the ``prescribed_rip`` design, in ``[0, 1)``.
    beta : float
        Singular value of ``Y`` in the ``isotropic`` design.
    z_log10_cond : float
        Ill-conditioning of ``Z``: its rows are scaled by ``10**-gamma_i`` with ``gamma_i``
        evenly spaced in ``[0, z_log10_cond]`` (ignored by the isotropic design).

    Returns
    -------
    LinearInverseData
    """
    d = positive_int("d", d)
    m = positive_int("m", m)
    s = positive_int("s", s)
    n = positive_int("n", n)
    choice("design", design, DESIGNS)
    if s > m:
        raise ValueError(f"s: the subspace dimension s={s} exceeds m={m}, so A R is rank-deficient")
    if s > d:
        raise ValueError(f"s: the subspace dimension s={s} exceeds d={d}")
    if n < s:
        raise ValueError(f"n: need n >= s for rank(Z) = s, got n={n} < s={s}")
    rip_delta = real("rip_delta", rip_delta, minimum=0.0)
    if rip_delta >= 1.0:
        raise ValueError(f"rip_delta: must be < 1, got {rip_delta}")
    beta = real("beta", beta, minimum=0.0, strict=True)
    z_log10_cond = real("z_log10_cond", z_log10_cond, minimum=0.0)

    R = _haar_orthonormal(rng_operator, d, s)
    G = rng_operator.standard_normal((m, d)) / np.sqrt(m)
    if design == "prescribed_rip":
        Q = _haar_orthonormal(rng_operator, m, s)
        sv = np.sqrt(np.linspace(1.0 - rip_delta, 1.0 + rip_delta, s)) if s > 1 else \
            np.array([np.sqrt(1.0 + rip_delta)])
        A = (Q * sv) @ R.T + G @ (np.eye(d) - R @ R.T)
    else:
        A = G
    if design == "isotropic":
        _Qa, Sa, PaT = np.linalg.svd(A @ R, full_matrices=False)
        O = _haar_orthonormal(rng_codes, n, s)
        Z = beta * (PaT.T / Sa) @ O.T
    else:
        Z = rng_codes.standard_normal((s, n))
        if z_log10_cond > 0:
            Z = Z * (10.0 ** -np.linspace(0.0, z_log10_cond, s))[:, None]
    X = R @ Z
    return LinearInverseData(R=R, A=A, Z=Z, X=X, Y=A @ X)


def objective_convention(name: str, n: int) -> tuple[float, float]:
    """Return ``(a, c)`` of a named loss convention.

    ``talk`` (the default elsewhere) is ``(1, 1)``; ``pytorch_wd`` is ``(1, 1/2)`` (``weight_decay``
    semantics); ``mean`` is ``(1/n, 1)``.
    """
    choice("convention", name, CONVENTIONS)
    a, c = CONVENTIONS[name]
    return (1.0 / positive_int("n", n) if a is None else a), c


# --------------------------------------------------------------------------------------------
# networks and initialization


def layer_dims(d: int, m: int, L: int, d_w: int) -> list[int]:
    """Return ``[d_0, ..., d_L] = [m, d_w, ..., d_w, d]`` (``[m, d]`` when ``L = 1``)."""
    d = positive_int("d", d)
    m = positive_int("m", m)
    L = positive_int("L", L)
    d_w = positive_int("d_w", d_w)
    return [m] + [d_w] * (L - 1) + [d]


def balanced_factorization(M: np.ndarray, L: int, d_w: int, rng: np.random.Generator | None = None,
                           rank: int | None = None) -> list[np.ndarray]:
    """Return a balanced factorization ``W_L ... W_1 = M`` with inner widths ``d_w``.

    With ``M = U S V^T`` of rank ``r``, ``W_1 = Q_1 S^{1/L} V^T``, ``W_l = Q_l S^{1/L} Q_{l-1}^T`` and
    ``W_L = U S^{1/L} Q_{L-1}^T`` for orthonormal ``Q_l`` (random if ``rng`` is given, else the
    leading coordinate vectors). Then ``W_{l+1}^T W_{l+1} = W_l W_l^T`` for every ``l``.

    Raises
    ------
    ValueError
        If ``d_w`` is below the rank of ``M``.
    """
    M = as_matrix("M", M)
    L = positive_int("L", L)
    d_w = positive_int("d_w", d_w)
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    if rank is None:
        rank = int(np.sum(S > max(M.shape) * _EPS * (S[0] if S.size else 0.0)))
    else:
        rank = positive_int("rank", rank)
        if rank > S.size:
            raise ValueError(f"rank: {rank} exceeds min(M.shape) = {S.size}")
    U, S, Vt = U[:, :rank], S[:rank], Vt[:rank]
    if L == 1:
        return [M.copy()]
    if d_w < rank:
        raise ValueError(f"d_w: width {d_w} is below the rank {rank} of the factorized map")
    root = S ** (1.0 / L)
    Qs = []
    for _ in range(L - 1):
        Qs.append(_haar_orthonormal(rng, d_w, rank) if rng is not None else np.eye(d_w, rank))
    weights = [(Qs[0] * root) @ Vt]
    for ell in range(1, L - 1):
        weights.append((Qs[ell] * root) @ Qs[ell - 1].T)
    weights.append((U * root) @ Qs[-1].T)
    return weights


def init_weights(dims: Sequence[int], scheme: str, rng: np.random.Generator, *, scale: float = 1.0,
                 target: np.ndarray | None = None) -> list[np.ndarray]:
    """Draw initial weights ``W_l`` of shape ``(dims[l], dims[l-1])``.

    Parameters
    ----------
    dims : sequence of int
        Layer dimensions ``[d_0, ..., d_L]`` (see :func:`layer_dims`).
    scheme : str
        ``lecun_normal`` (default elsewhere): ``N(0, 1/fan_in)``; ``kaiming_normal_relu``:
        ``N(0, 2/fan_in)``; ``torch_default``: ``U(-fan_in^{-1/2}, fan_in^{-1/2})`` (PyTorch
        ``nn.Linear``); ``orthogonal``: semi-orthogonal; ``balanced``: balanced factorization of
        ``target``.
    rng : numpy.random.Generator
        Source of randomness.
    scale : float
        Global multiplier for small-initialization ablations.
    target : ndarray, optional
        The end-to-end map to factorize (``balanced`` only).

    Returns
    -------
    list of ndarray
    """
    choice("scheme", scheme, INIT_SCHEMES)
    scale = real("scale", scale, minimum=0.0)
    dims = [positive_int("dims", k) for k in dims]
    if len(dims) < 2:
        raise ValueError(f"dims: need at least two layer dimensions, got {dims}")
    if scheme == "balanced":
        if target is None:
            raise ValueError("target: the balanced scheme needs the end-to-end map to factorize")
        target = as_matrix("target", target)
        if target.shape != (dims[-1], dims[0]):
            raise ValueError(f"target: expected shape {(dims[-1], dims[0])}, got {target.shape}")
        inner = dims[1] if len(dims) > 2 else dims[0]
        return [scale * W for W in balanced_factorization(target, len(dims) - 1, inner, rng)]
    weights = []
    for fan_out, fan_in in zip(dims[1:], dims[:-1], strict=True):
        if scheme == "lecun_normal":
            W = rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)
        elif scheme == "kaiming_normal_relu":
            W = rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)
        elif scheme == "torch_default":
            bound = 1.0 / np.sqrt(fan_in)
            W = rng.uniform(-bound, bound, size=(fan_out, fan_in))
        else:
            tall = fan_out >= fan_in
            q = _haar_orthonormal(rng, max(fan_out, fan_in), min(fan_out, fan_in))
            W = q if tall else q.T
        weights.append(scale * W)
    return weights


# --------------------------------------------------------------------------------------------
# gradients and the update rule


def _t(B):
    return B.swapaxes(-1, -2)


def _check_array(name: str, B):
    # Object arrays (mpmath numbers for high-precision replays) are exempt from the finiteness
    # test, which numpy cannot evaluate on them; their shapes are still checked.
    B = B if isinstance(B, np.ndarray) and B.dtype == object else as_matrix(name, B, ndim=(2, 3))
    if B.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a matrix or a batch of matrices, got shape {B.shape}")
    return B


def _check_weights(weights, fan_in: int | None = None, name: str = "weights") -> list:
    if len(weights) < 1:
        raise ValueError(f"{name}: need at least one layer (L >= 1), got none")
    ws = [_check_array(f"{name}[{i}]", W) for i, W in enumerate(weights)]
    prev = ws[0].shape[-1] if fan_in is None else fan_in
    for i, W in enumerate(ws):
        if W.shape[-1] != prev or W.shape[:-2] != ws[0].shape[:-2]:
            raise ValueError(f"{name}[{i}]: shape {W.shape} does not chain with the previous "
                             f"layer (fan-in {prev} expected)")
        prev = W.shape[-2]
    return ws


def _check_xy(X, Y):
    X, Y = _check_array("X", X), _check_array("Y", Y)
    if X.shape[:-2] != Y.shape[:-2] or X.shape[-1] != Y.shape[-1]:
        raise ValueError(f"Y: shape {Y.shape} does not match X of shape {X.shape} "
                         "(same batch shape and number of columns needed)")
    return X, Y


def _check_problem_pure(weights, X, Y, name: str = "weights"):
    X, Y = _check_xy(X, Y)
    ws = _check_weights(weights, fan_in=Y.shape[-2], name=name)
    if ws[-1].shape[-2] != X.shape[-2]:
        raise ValueError(f"{name}[{len(ws) - 1}]: output dimension {ws[-1].shape[-2]} differs from "
                         f"the signal dimension d={X.shape[-2]} of X")
    return ws, X, Y


def _check_scalar(name: str, value, *, strict: bool):
    try:
        vals = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real number or array, got {value!r}") from exc
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if strict and not np.all(vals > 0):
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    if not strict and not np.all(vals >= 0):
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    return value


def end_to_end(weights: Sequence[np.ndarray], start: int = 0) -> np.ndarray:
    """Return ``W_{L:start+1} = W_L ... W_{start+1}`` (batched if the weights are)."""
    if len(weights) < 1:
        raise ValueError("weights: need at least one layer (L >= 1), got none")
    if not 0 <= start < len(weights):
        raise ValueError(f"start: must lie in [0, {len(weights) - 1}], got {start}")
    P = weights[start]
    for W in weights[start + 1:]:
        P = W @ P
    return P


def forward_backward(weights: Sequence[np.ndarray], X, Y):
    """Residual and data-term gradients ``G_l = W_{L:l+1}^T E Y^T W_{l-1:1}^T``.

    Uses only ``@``, ``-`` and transposes, so it also runs on object arrays of mpmath numbers.

    Returns
    -------
    E : ndarray
        Residual ``W_{L:1} Y - X``.
    grads : list of ndarray
        ``G_1, ..., G_L``.
    B1 : ndarray
        The backpropagated signal at the first layer (``G_1 = B1 Y^T``).

    Raises
    ------
    ValueError
        On non-finite entries or shapes that do not chain.
    """
    weights, X, Y = _check_problem_pure(weights, X, Y)
    return _forward_backward(weights, X, Y)


def _forward_backward(weights, X, Y):
    # Unchecked kernel of forward_backward, for the training loops (validated once up front).
    H = [Y]
    for W in weights:
        H.append(W @ H[-1])
    E = H[-1] - X
    grads = [None] * len(weights)
    B = E
    for ell in range(len(weights) - 1, -1, -1):
        grads[ell] = B @ _t(H[ell])
        if ell:
            B = _t(weights[ell]) @ B
    return E, grads, B


def layer_coefficients(dims: Sequence[int], eta, lam_bar, a, update: str = "standard"):
    """Per-layer shrink factors ``rho_l`` and data steps ``gamma_l``.

    ``standard``: ``rho_l = 1 - eta lam_bar`` and ``gamma_l = eta a``. ``seed002_ntk`` (the
    [unverified] NTK parametrization ``W_l = d_{l-1}^{-1/2} V_l`` with GD on ``V``):
    ``rho_l = 1 - eta lam_bar / d_{l-1}`` and ``gamma_l = eta a / d_{l-1}``.
    Scalars stay scalars (so mpmath numbers pass through); arrays of shape ``(B,)`` become
    ``(B, 1, 1)`` for broadcasting over a batch.
    """
    choice("update", update, UPDATE_PROFILES)
    _check_scalar("eta", eta, strict=True)
    _check_scalar("lam_bar", lam_bar, strict=False)
    _check_scalar("a", a, strict=True)

    def shape(v):
        return np.asarray(v, dtype=np.float64)[:, None, None] if np.ndim(v) else v

    eta, lam_bar, a = shape(eta), shape(lam_bar), shape(a)
    rhos, gammas = [], []
    for fan_in in dims[:-1]:
        div = fan_in if update == "seed002_ntk" else 1
        rhos.append(1 - eta * lam_bar / div)
        gammas.append(eta * a / div)
    return rhos, gammas


def objective(weights: Sequence[np.ndarray], X, Y, *, lam=0.0, a=1.0, c=1.0) -> np.ndarray:
    """Value of ``F = a/2 ||W_{L:1} Y - X||_F^2 + c lam sum_l ||W_l||_F^2`` (per batch member)."""
    weights, X, Y = _check_problem_pure(weights, X, Y)
    _check_scalar("lam", lam, strict=False)
    _check_scalar("a", a, strict=True)
    _check_scalar("c", c, strict=True)
    E = end_to_end(weights) @ Y - X
    data = 0.5 * np.sum(E * E, axis=(-2, -1))
    pen = sum(np.sum(W * W, axis=(-2, -1)) for W in weights)
    return a * data + c * lam * pen


def gradient(weights: Sequence[np.ndarray], X, Y, *, lam=0.0, a=1.0, c=1.0) -> list[np.ndarray]:
    """Gradient ``nabla_{W_l} F = a G_l + lam_bar W_l`` with ``lam_bar = 2 c lam``."""
    _check_scalar("lam", lam, strict=False)
    _check_scalar("a", a, strict=True)
    _check_scalar("c", c, strict=True)
    _, grads, _ = forward_backward(weights, X, Y)
    lam_bar = 2 * c * lam
    return [a * G + lam_bar * W for G, W in zip(grads, weights, strict=True)]


def gd_step(weights: Sequence[np.ndarray], X, Y, *, eta, lam=0.0, a=1.0, c=1.0,
            update: str = "standard") -> list[np.ndarray]:
    """One gradient-descent step ``W_l <- rho_l W_l - gamma_l G_l``, all layers from time t.

    A pure function (new arrays out); it uses only arithmetic operators and ``@``, so it also
    runs on object arrays of mpmath numbers for high-precision replays.
    """
    _check_scalar("lam", lam, strict=False)
    _check_scalar("c", c, strict=True)
    _, grads, _ = forward_backward(weights, X, Y)
    dims = [weights[0].shape[-1]] + [W.shape[-2] for W in weights]
    rhos, gammas = layer_coefficients(dims, eta, 2 * c * lam, a, update)
    return [r * W - g * G for r, g, W, G in zip(rhos, gammas, weights, grads, strict=True)]


# --------------------------------------------------------------------------------------------
# the exact row-space reduction (D0)


def reduce_columns(X: np.ndarray, Y: np.ndarray):
    """Exact row-space reduction ``(X, Y) -> (X V, Y V)``.

    ``V`` holds the leading right singular vectors of ``[X; Y]``, as many as its numerical rank
    (the largest rank over a batch), so ``row(X) + row(Y)`` lies in ``range(V)`` and every loss,
    gradient and GD iterate is unchanged (D0).

    Returns
    -------
    X_red, Y_red, V : ndarray
        Reduced data and the orthonormal ``V`` (shape ``(..., n, r)``).
    """
    X, Y = _check_xy(X, Y)
    K = np.concatenate([X, Y], axis=-2)
    _, S, Vt = np.linalg.svd(K, full_matrices=False)
    tol = max(K.shape[-2:]) * _EPS * S[..., :1]
    r = max(int(np.max(np.sum(S > tol, axis=-1))), 1)
    V = _t(Vt[..., :r, :])
    return X @ V, Y @ V, V


def range_basis(Y: np.ndarray, rank: int | None = None) -> np.ndarray:
    """Orthonormal basis of ``range(Y)`` (``(..., m, r)``), ``r`` the numerical rank of ``Y``."""
    Y = as_matrix("Y", Y, ndim=(2, 3))
    U, S, _ = np.linalg.svd(Y, full_matrices=False)
    if rank is None:
        tol = max(Y.shape[-2:]) * _EPS * S[..., :1]
        rank = max(int(np.max(np.sum(S > tol, axis=-1))), 1)
    return U[..., :rank]


def data_oracle(X: np.ndarray, Y: np.ndarray, rank: int | None = None) -> np.ndarray:
    """``X Y^+`` through a rank-truncated SVD of ``Y`` (batched).

    Raises
    ------
    ValueError
        On non-finite or mismatched inputs, or if ``Y`` is numerically zero.
    """
    X, Y = _check_xy(as_matrix("X", X, ndim=(2, 3)), as_matrix("Y", Y, ndim=(2, 3)))
    U, S, Vt = np.linalg.svd(Y, full_matrices=False)
    if not np.all(S[..., 0] > 0):
        raise ValueError("Y: is zero, so X Y^+ (and the oracle records) are undefined")
    if rank is None:
        tol = max(Y.shape[-2:]) * _EPS * S[..., :1]
        rank = max(int(np.max(np.sum(S > tol, axis=-1))), 1)
    if np.any(S[..., rank - 1] <= 0):
        raise ValueError(f"rank: Y has fewer than {rank} nonzero singular values")
    return ((X @ _t(Vt[..., :rank, :])) / S[..., None, :rank]) @ _t(U[..., :rank])


# --------------------------------------------------------------------------------------------
# trajectories


RECORD_NAMES = ("loss", "fit_error", "off_subspace_norm", "off_subspace_fro",
                "first_layer_off_subspace_fro", "oracle_distance", "balancedness", "sigma_max",
                "sigma_min", "tail_norm", "d2_rounding_scale", "weight_drift")


@dataclasses.dataclass
class Trajectory:
    """A recorded optimization trajectory.

    Attributes
    ----------
    times : ndarray, shape (n_records,)
        Iterations (GD) or times (gradient flow) of the records.
    records : dict of str -> ndarray
        Per record name an array of shape ``(n_records,)`` (``(n_records, B)`` for a batch;
        ``weight_drift`` has a trailing layer axis). See :data:`RECORD_NAMES`.
    weights : list of ndarray
        The final weights.
    snapshots : dict of int -> list of ndarray
        Weights kept at requested iterations.
    reduction : ndarray or None
        The ``V`` of the row-space reduction, if it was used.
    """

    times: np.ndarray
    records: dict[str, np.ndarray]
    weights: list[np.ndarray]
    snapshots: dict[int, list[np.ndarray]]
    reduction: np.ndarray | None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.records[name]

    def at(self, t) -> dict[str, np.ndarray]:
        """All records at the record time ``t``."""
        idx = int(np.flatnonzero(self.times == t)[0])
        return {k: v[idx] for k, v in self.records.items()}


def log_schedule(steps: int, n_records: int = 60) -> np.ndarray:
    """Log-spaced record iterations in ``[0, steps]``, always including 0 and ``steps``."""
    steps = positive_int("steps", steps, minimum=0)
    pts = np.unique(np.round(np.logspace(0, np.log10(max(steps, 1)), n_records)).astype(int))
    return np.unique(np.concatenate([[0], pts[pts <= steps], [steps]]))


class _Recorder:
    """Computes the diagnostic records; knows the data, the projector and the oracle."""

    def __init__(self, X, Y, weights0, rhos, lam, a, c, drift: bool):
        self.X, self.Y = X, Y
        self.Q = range_basis(Y)
        self.rank = self.Q.shape[-1]
        self.M0 = data_oracle(X, Y, self.rank)
        self.w0 = [W.copy() for W in weights0] if drift else None
        self.w0_norm = [np.linalg.norm(W, axis=(-2, -1)) for W in weights0] if drift else None
        self.rhos = rhos
        self.lam, self.a, self.c = lam, a, c
        self.rows: list[dict[str, np.ndarray]] = []

    def record(self, weights, t, d2_scale):
        M = end_to_end(weights)
        E = M @ self.Y - self.X
        MP = M - (M @ self.Q) @ _t(self.Q)
        W1P = weights[0] - (weights[0] @ self.Q) @ _t(self.Q)
        sv = np.linalg.svd(M, compute_uv=False)
        fit2 = np.sum(E * E, axis=(-2, -1))
        pen = sum(np.sum(W * W, axis=(-2, -1)) for W in weights)
        bal = np.zeros(fit2.shape)
        for W, Wn in itertools.pairwise(weights):
            bal = np.maximum(bal, np.linalg.norm(_t(Wn) @ Wn - W @ _t(W), axis=(-2, -1)))
        tail = (np.linalg.norm(end_to_end(weights, 1), 2, axis=(-2, -1)) if len(weights) > 1
                else np.ones(fit2.shape))
        row = {
            "loss": self.a * 0.5 * fit2 + self.c * self.lam * pen,
            "fit_error": np.sqrt(fit2),
            "off_subspace_norm": np.linalg.norm(MP, 2, axis=(-2, -1)),
            "off_subspace_fro": np.linalg.norm(MP, axis=(-2, -1)),
            "first_layer_off_subspace_fro": np.linalg.norm(W1P, axis=(-2, -1)),
            "oracle_distance": np.linalg.norm(M - self.M0, 2, axis=(-2, -1)),
            "balancedness": bal,
            "sigma_max": sv[..., 0],
            "sigma_min": sv[..., self.rank - 1],
            "tail_norm": tail,
            "d2_rounding_scale": np.broadcast_to(np.asarray(d2_scale, dtype=float), fit2.shape),
        }
        if self.w0 is not None:
            drift = []
            for W, W0, n0, rho in zip(weights, self.w0, self.w0_norm, self.rhos, strict=True):
                rt = np.asarray(rho, dtype=float) ** t
                drift.append(np.linalg.norm(W - rt * W0, axis=(-2, -1)) / n0)
            row["weight_drift"] = np.stack(drift, axis=-1)
        self.rows.append(row)
        return row

    def stacked(self) -> dict[str, np.ndarray]:
        # An empty schedule (record_at=[]) records nothing: no keys rather than an IndexError.
        if not self.rows:
            return {}
        return {k: np.stack([r[k] for r in self.rows]) for k in self.rows[0]}


def _check_problem(X, Y, weights0):
    # Training entry points take float64 data only (no object arrays) and copy the weights.
    X, Y = _check_xy(as_matrix("X", X, ndim=(2, 3)), as_matrix("Y", Y, ndim=(2, 3)))
    weights = [as_matrix(f"weights0[{i}]", W, ndim=(X.ndim,)).copy()
               for i, W in enumerate(weights0)]
    weights, X, Y = _check_problem_pure(weights, X, Y, name="weights0")
    return X, Y, weights


def _fro_last2(M: np.ndarray) -> np.ndarray | float:
    """Frobenius norm over the last two axes (a rounding scale, not an iterate); ``einsum`` makes
    one pass where ``linalg.norm(axis=(-2, -1))`` makes several (6.5 vs 15 us for 64 x 32 x 10)."""
    return np.sqrt(np.einsum("...ij,...ij->...", M, M))


_FOLD_EVERY = 256
"""Steps between folds of the deferred shrink factors into the weights (see :func:`run_gd`)."""


def run_gd(X, Y, weights0: Sequence[np.ndarray], *, eta, steps: int, lam=0.0, a=1.0, c=1.0,
           update: str = "standard", record_at: Sequence[int] | None = None, reduce: bool = True,
           divergence_factor: float = 1e3, keep_at: Sequence[int] = (), drift: bool = False,
           progress: Callable[[int, int], None] | None = None) -> Trajectory:
    """Run full-batch gradient descent with weight decay and record the trajectory.

    Parameters
    ----------
    X, Y : ndarray
        Training signals ``(d, n)`` and measurements ``(m, n)``, or batches ``(B, d, n)``,
        ``(B, m, n)``.
    weights0 : sequence of ndarray
        Initial weights ``W_1, ..., W_L`` (copied; the caller's arrays are not modified).
    eta : float or ndarray of shape (B,)
        Step size, > 0.
    steps : int
        Number of GD steps.
    lam : float or ndarray of shape (B,)
        Weight-decay parameter, >= 0.
    a, c : float
        Loss convention (see module docstring); defaults are the talk's objective.
    update : {"standard", "seed002_ntk"}
        Update profile (see :func:`layer_coefficients`).
    record_at : sequence of int, optional
        Iterations to record; log-spaced (:func:`log_schedule`) by default.
    reduce : bool
        Train on the exactly reduced data ``(X V, Y V)`` (D0); the iterates are the same up to
        rounding and a step costs ``O(rank)`` instead of ``O(n)`` columns.
    divergence_factor : float
        The run diverges if the fit error exceeds this multiple of its initial value (or of
        ``||X||_F`` if larger), or becomes non-finite.
    keep_at : sequence of int
        Iterations at which to keep copies of the weights.
    drift : bool
        Also record ``||W_l(t) - rho_l^t W_l(0)||_F / ||W_l(0)||_F`` per layer.
    progress : callable, optional
        Called as ``progress(t, steps)`` every few hundred steps.

    Returns
    -------
    Trajectory

    Raises
    ------
    DivergenceError
        If the run diverges; carries the iteration and the last finite record.
    ValueError
        On invalid input.
    """
    X, Y, weights = _check_problem(X, Y, weights0)
    steps = positive_int("steps", steps, minimum=0)
    _check_scalar("eta", eta, strict=True)
    _check_scalar("lam", lam, strict=False)
    _check_scalar("a", a, strict=True)
    _check_scalar("c", c, strict=True)
    divergence_factor = real("divergence_factor", divergence_factor, minimum=1.0, strict=True)
    schedule = log_schedule(steps) if record_at is None else np.unique(np.asarray(record_at, int))
    if schedule.size and (schedule[0] < 0 or schedule[-1] > steps):
        raise ValueError(f"record_at: iterations must lie in [0, {steps}]")
    keep = set(int(k) for k in keep_at)

    V = None
    Xr, Yr = X, Y
    if reduce:
        Xr, Yr, V = reduce_columns(X, Y)
    dims = [Y.shape[-2]] + [W.shape[-2] for W in weights]
    lam_bar = 2 * np.asarray(c) * np.asarray(lam)
    rhos, gammas = layer_coefficients(dims, eta, lam_bar if np.ndim(lam_bar) else float(lam_bar),
                                      a, update)
    recorder = _Recorder(Xr, Yr, weights, rhos, lam, a, c, drift)
    y_norm = np.linalg.norm(Yr, axis=(-2, -1))
    rho1, gamma1 = (np.squeeze(np.asarray(v, dtype=float), axis=(-2, -1)) if np.ndim(v) else v
                    for v in (rhos[0], gammas[0]))
    d2_scale = np.zeros(y_norm.shape)
    snapshots: dict[int, list[np.ndarray]] = {}
    record_set = set(int(k) for k in schedule)
    last_row: dict = {}
    every = max(1, steps // 50)

    # One preallocated buffer per layer for gamma_l G_l: allocating d_w x d_w temporaries every
    # step page-faults in a fresh process (measured 11.3 ms vs 2.2 ms per Figure-1 step).
    bufs = [np.empty_like(W) for W in weights]
    # Per-instance shrink factors rho_l of a batch, broadcast once to the weights' shape: numpy's
    # stride-0 broadcast of a (B, 1, 1) factor runs ~2x slower than a contiguous operand
    # (measured 32 vs 15 us for 64 x 32 x 32), and this multiply is a full pass over the weights
    # every step. The products are the same scalar multiplications, so the iterates are bitwise
    # unchanged; the cost is one weights-sized array per layer (still O(parameters)).
    shrink = [np.ascontiguousarray(np.broadcast_to(r, W.shape)) if np.ndim(r) else r
              for r, W in zip(rhos, weights, strict=True)]
    # Deferred shrink (batches only): with every |rho_l| >= 1/2 the loop stores W_l = s_l What_l
    # with the running product s_l = rho_l^t, so the decay costs a multiply of the thin signals
    # instead of a pass over the weights each step (17% of a batched small step; a single
    # instance would pay more in extra numpy calls than it saves). The running product
    # carries a relative error <= t u, which the D2 rounding scale below already covers (it
    # accumulates t |rho_1|^t ||W_1(0)|| among its terms); What_l is folded back into W_l every
    # _FOLD_EVERY steps, so |s_l| stays in [2^-_FOLD_EVERY, 2^_FOLD_EVERY] (deferral needs
    # 1/2 <= |rho_l| <= 2), far from underflow and overflow, and whenever the weights themselves
    # are needed. Folding on a fixed schedule instead of testing the range of s_l each step saves
    # a sixth of a batched small step.
    deferred = X.ndim == 3 and all(np.all((np.abs(r) >= 0.5) & (np.abs(r) <= 2.0)) for r in rhos)
    scales = [np.ones_like(r) if np.ndim(r) else 1.0 for r in rhos]

    def actual() -> list[np.ndarray]:
        return [W * s for W, s in zip(weights, scales, strict=True)] if deferred else weights

    w1_norm = _fro_last2(weights[0])
    # Loop invariants hoisted out of the step: on the small batched instances every numpy call
    # costs ~1.5 us of dispatch, as much as its arithmetic.
    abs_rho1 = np.abs(rho1)
    b1_coef = gamma1 * y_norm
    thresh2 = None
    for t in range(steps + 1):
        H = [Yr]
        for W, s_l in zip(weights, scales, strict=True):
            H.append(W @ H[-1])
            if deferred:
                H[-1] *= s_l
        E = H[-1] - Xr
        fit2 = np.einsum("...ij,...ij->...", E, E)
        if thresh2 is None:
            r0 = np.maximum(np.sqrt(fit2), np.linalg.norm(Xr, axis=(-2, -1)))
            r0 = np.maximum(r0, np.finfo(float).tiny)
            # Capped so that a residual whose square overflows still counts as divergent.
            thresh2 = np.minimum((divergence_factor * r0) ** 2, np.finfo(float).max)
        # `not <=` is also true for NaN, so one comparison catches both ways of diverging.
        if not np.all(fit2 <= thresh2):
            fit = np.sqrt(fit2)
            bad = ~np.isfinite(fit) | (fit > divergence_factor * r0)
            reason = ("non-finite residual" if not np.all(np.isfinite(fit)) else
                      f"fit error exceeded {divergence_factor:g} x its initial value")
            raise DivergenceError(t, reason, last_row, np.flatnonzero(np.atleast_1d(bad)).tolist())
        if t in record_set:
            last_row = recorder.record(actual(), t, d2_scale)
        if t in keep:
            snapshots[t] = [W.copy() for W in actual()]
        if t == steps:
            break
        # Backward pass fused with the update: W_l is overwritten only after B_{l-1} = W_l^T B_l
        # has been formed from it, so every layer still steps from the time-t values. The step
        # gamma_l is applied to the thin backpropagated signal (r columns), not to the d x d
        # gradient.
        # The thin factor H_l^T is made contiguous (an r x d_l copy) because stacked matmuls of a
        # transposed view take a slower path (measured 34 vs 18 us for 64 x (32x2)(2x32)).
        B = E
        for ell in range(len(weights) - 1, -1, -1):
            if deferred:
                s_new = scales[ell] * rhos[ell]
                np.matmul((gammas[ell] / s_new) * B, np.ascontiguousarray(_t(H[ell])),
                          out=bufs[ell])
                if ell:
                    B = scales[ell] * (_t(weights[ell]) @ B)
                weights[ell] -= bufs[ell]
                scales[ell] = s_new
            else:
                np.matmul(gammas[ell] * B, np.ascontiguousarray(_t(H[ell])), out=bufs[ell])
                if ell:
                    B = _t(weights[ell]) @ B
                weights[ell] *= shrink[ell]
                weights[ell] -= bufs[ell]
        # Rounding scale of D2 (class U): accumulates ||W_1|| + gamma ||B_1|| ||Y|| of time t,
        # carried forward by |rho_1| (rho_1 < 0 when eta lam_bar > 1).
        d2_scale = abs_rho1 * d2_scale + (w1_norm + b1_coef * _fro_last2(B))
        w1_norm = _fro_last2(weights[0])
        if deferred:
            w1_norm *= np.abs(scales[0][..., 0, 0]) if np.ndim(scales[0]) else abs(scales[0])
            if (t + 1) % _FOLD_EVERY == 0:
                for ell, s_l in enumerate(scales):
                    weights[ell] *= s_l
                    scales[ell] = np.ones_like(s_l)
        if progress is not None and t % every == 0:
            progress(t, steps)
    return Trajectory(times=schedule.astype(float), records=recorder.stacked(), weights=actual(),
                      snapshots=snapshots, reduction=V)


def run_flow(X, Y, weights0: Sequence[np.ndarray], *, t_eval: Sequence[float], lam=0.0, a=1.0,
             c=1.0, method: str = "LSODA", rtol: float = 1e-10, atol: float = 1e-12,
             reduce: bool = True, keep_weights: bool = False) -> Trajectory:
    """Integrate the gradient flow ``dW_l/dt = -(a G_l + lam_bar W_l)`` (the limit eta -> 0).

    Parameters
    ----------
    X, Y, weights0 : ndarray
        As in :func:`run_gd` (unbatched).
    t_eval : sequence of float
        Increasing times ``>= 0`` at which to record; the flow is integrated on
        ``[0, max(t_eval)]``.
    lam, a, c : float
        Objective, as in :func:`run_gd`.
    method : str
        ``scipy.integrate.solve_ivp`` method; ``LSODA`` switches to a stiff method when the
        decay rates separate (large ``lam_bar`` against the data curvature).
    rtol, atol : float
        Solver tolerances.
    reduce : bool
        Use the row-space reduction (D0).
    keep_weights : bool
        Keep the weights at every ``t_eval`` in ``snapshots`` (keyed by index).

    Returns
    -------
    Trajectory
        ``times`` are the flow times; ``d2_rounding_scale`` is zero and no drift is recorded.
    """
    X, Y, weights = _check_problem(X, Y, weights0)
    if X.ndim != 2:
        raise ValueError("X: run_flow takes a single instance, not a batch")
    lam = real("lam", lam, minimum=0.0)
    a = real("a", a, minimum=0.0, strict=True)
    c = real("c", c, minimum=0.0, strict=True)
    t_eval = np.asarray(t_eval, dtype=float)
    if t_eval.ndim != 1 or t_eval.size == 0 or np.any(np.diff(t_eval) < 0) or t_eval[0] < 0:
        raise ValueError("t_eval: need a non-empty increasing sequence of times >= 0")
    Xr, Yr = X, Y
    V = None
    if reduce:
        Xr, Yr, V = reduce_columns(X, Y)
    shapes = [W.shape for W in weights]
    sizes = [int(np.prod(s)) for s in shapes]
    lam_bar = 2 * c * lam

    def unpack(theta):
        out, i = [], 0
        for shp, sz in zip(shapes, sizes, strict=True):
            out.append(theta[i:i + sz].reshape(shp))
            i += sz
        return out

    def field(_t_now, theta):
        ws = unpack(theta)
        _, grads, _ = _forward_backward(ws, Xr, Yr)
        return -np.concatenate([(a * G + lam_bar * W).ravel()
                                for G, W in zip(grads, ws, strict=True)])

    theta0 = np.concatenate([W.ravel() for W in weights])
    sol = solve_ivp(field, (0.0, float(t_eval[-1])), theta0, method=method, t_eval=t_eval,
                    rtol=rtol, atol=atol)
    if not sol.success or not np.all(np.isfinite(sol.y)):
        raise DivergenceError(int(sol.t.size), f"gradient-flow solver failed: {sol.message}", {},
                              [0])
    recorder = _Recorder(Xr, Yr, weights, None, lam, a, c, drift=False)
    snapshots = {}
    for j in range(sol.t.size):
        ws = unpack(sol.y[:, j])
        recorder.record(ws, sol.t[j], 0.0)
        if keep_weights:
            snapshots[j] = [W.copy() for W in ws]
    return Trajectory(times=sol.t, records=recorder.stacked(), weights=unpack(sol.y[:, -1]),
                      snapshots=snapshots, reduction=V)
