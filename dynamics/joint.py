"""Joint parameterized optimization (JPO): a shared MLP trained by Adam on many inverse problems.

Spec ``jpo.md`` §2.3, §2.4, §4 (protocol [project choice]):

* :class:`MLP`: layer sizes ``[d_in, h_1, ..., d]``, ``tanh`` hidden activations, output
  ``x = x0 + W_L h_{L-1} + b_L``; initialization ``W_l ~ N(0, 1/fan_in)`` (``"lecun"``, the spec
  default), ``N(0, 2/fan_in)`` (``"he"``) or ``N(0, 2/(fan_in + fan_out))`` (``"glorot"``), ``b_l = 0``,
  then ``W_L *= kappa_out`` (an initialization scale only, never a factor of the forward map);
  hand-written forward and backward passes over all ``n`` examples at once.
* :class:`Adam`: bias-corrected Adam on the flat parameter vector, full batch.
* :class:`Clip`: the per-example gradient clips ``none``, ``elem(c)``, ``norm(c)`` of §4.3, with the
  default ``c`` = median over ``i`` of ``||g_i||_2`` at the first training step, then held fixed.
* :func:`joint_gradient`: ``J(theta) = (1/n) sum_i L_i(N_theta(u_i))`` and its weight gradient
  ``(1/n) sum_i (dN_theta(u_i)/dtheta)^T C(g_i)`` (§2.3); the training loop runs the same code.
* :func:`train_jpo`: ``S_train`` full-batch Adam steps; the final iterate is used (§4.2). It receives only
  the network inputs and a callback ``x (n, d) -> (losses (n,), grads (n, d))``, so no ground truth is
  reachable from it (§4.4).
* :func:`refine_outputs` / :func:`train_jpo_bfgs`: JPO + BFGS refinement (§2.4) with a caller-supplied
  ``refine(starts)`` (the §3 BFGS wrapper lives in ``dynamics/bfgs_reference.py``; it is not imported).

Parameters live in one flat float64 vector (layer by layer: ``W_l`` row-major of shape
``(fan_out, fan_in)``, then ``b_l``), so Adam is a handful of vector operations and "trained weights
bitwise equal" is a comparison of one array. The training loop preallocates every per-step array;
with fixed seeds two runs agree bitwise on one machine and BLAS backend (§4.4).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dynamics._validate import as_matrix, choice, positive_int, real
from dynamics.errors import DivergenceError

INIT_SCHEMES = ("lecun", "he", "glorot")
"""Weight initializations: ``lecun`` is the spec's ``N(0, 1/fan_in)`` (§4.1)."""
CLIP_KINDS = ("none", "elem", "norm")
"""Per-example clipping variants of spec §4.3."""
NETWORK_SEED_OFFSET = 1000
"""Spec §4.2: the network of data seed ``s`` is initialized from ``default_rng(1000 + s)``."""
DEFAULT_HIDDEN = (32, 32)
"""Hidden sizes when neither ``sizes`` nor ``hidden`` is given (the ripple network ``[1, 32, 32, 1]``,
spec §7.1); the other benchmarks pass theirs."""
DEFAULT_STEPS = 3000
"""Spec §4.2: ``S_train``."""
DEFAULT_LR = 1e-3
DEFAULT_BETAS = (0.9, 0.999)
DEFAULT_EPS = 1e-8

LossAndGrad = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``x (n, d) -> (losses (n,), grads (n, d))``: the per-example losses ``L_i(x_i)`` and gradients
``g_i = grad L_i(x_i)``."""


# --------------------------------------------------------------------------------------------
# network


class MLP:
    """Layout and hand-written passes of a ``tanh`` MLP with a shifted linear output layer.

    The map is ``h_0 = u``, ``h_l = tanh(W_l h_{l-1} + b_l)`` for hidden layers and
    ``x = x0 + W_L h_{L-1} + b_L`` (spec §4.1). Parameters are a flat vector ``theta`` (see
    :meth:`unflatten`); the object itself holds no parameters.

    Parameters
    ----------
    sizes : sequence of int
        ``[d_in, h_1, ..., h_{L-1}, d]``, at least two entries, all ``>= 1``.

    Raises
    ------
    ValueError
        If ``sizes`` has fewer than two entries or a non-positive entry.
    """

    def __init__(self, sizes: Sequence[int]):
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence | np.ndarray):
            raise ValueError(f"sizes: expected a sequence of layer sizes, got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"sizes: need at least [d_in, d], got {list(sizes)!r}")
        self.sizes: tuple[int, ...] = tuple(positive_int("sizes", s) for s in sizes)
        # (w_start, w_end, b_end) per layer in the flat vector
        self._slices: list[tuple[int, int, int]] = []
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            w_end = offset + fan_out * fan_in
            self._slices.append((offset, w_end, w_end + fan_out))
            offset = w_end + fan_out
        self.n_params: int = offset

    def __repr__(self) -> str:
        return f"MLP(sizes={list(self.sizes)})"

    @property
    def n_layers(self) -> int:
        """Number of affine layers ``L``."""
        return len(self.sizes) - 1

    @property
    def d_in(self) -> int:
        return self.sizes[0]

    @property
    def d_out(self) -> int:
        return self.sizes[-1]

    def block_slices(self) -> list[tuple[str, slice]]:
        """``(name, slice of theta)`` for every parameter block: ``W1, b1, ..., WL, bL``."""
        out = []
        for ell, (w0, w1, b1) in enumerate(self._slices, start=1):
            out += [(f"W{ell}", slice(w0, w1)), (f"b{ell}", slice(w1, b1))]
        return out

    def unflatten(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Views ``[(W_1, b_1), ..., (W_L, b_L)]`` into ``theta``, ``W_l`` of shape ``(fan_out, fan_in)``.

        The entries are not inspected (``theta`` may be an uninitialized output buffer).

        Raises
        ------
        ValueError
            If ``theta`` is not a contiguous float64 vector of length :attr:`n_params` (views of
            anything else could not alias it).
        """
        if not (isinstance(theta, np.ndarray) and theta.dtype == np.float64
                and theta.shape == (self.n_params,) and theta.flags.c_contiguous):
            raise ValueError(f"theta: expected a contiguous float64 vector of length {self.n_params} "
                             f"(the parameters of {self!r}), got {type(theta).__name__} of shape "
                             f"{np.shape(theta)}")
        layers = []
        for (w0, w1, b1), fan_in, fan_out in zip(self._slices, self.sizes[:-1], self.sizes[1:], strict=True):
            layers.append((theta[w0:w1].reshape(fan_out, fan_in), theta[w1:b1]))
        return layers

    def flatten(self, layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """The flat vector of ``[(W_1, b_1), ...]`` (inverse of :meth:`unflatten`)."""
        if len(layers) != self.n_layers:
            raise ValueError(f"layers: expected {self.n_layers} (W, b) pairs, got {len(layers)}")
        theta = np.empty(self.n_params)
        for (W_view, b_view), (W, b) in zip(self.unflatten(theta), layers, strict=True):
            W = as_matrix("layers", W)
            b = as_matrix("layers", b, ndim=(1,))
            if W.shape != W_view.shape or b.shape != b_view.shape:
                raise ValueError(f"layers: expected shapes {W_view.shape}, {b_view.shape}, "
                                 f"got {W.shape}, {b.shape}")
            W_view[...] = W
            b_view[...] = b
        return theta

    def init(self, rng: np.random.Generator, *, init: str = "lecun", kappa_out: float = 1.0) -> np.ndarray:
        """Initial parameters (spec §4.1).

        Draw order (part of the reproducibility contract): ``W_1, ..., W_L``, each as
        ``rng.standard_normal((fan_out, fan_in))`` times the scheme's standard deviation; biases are 0;
        finally ``W_L *= kappa_out``.

        Parameters
        ----------
        rng : numpy.random.Generator
        init : {"lecun", "he", "glorot"}
            ``N(0, 1/fan_in)`` (spec default), ``N(0, 2/fan_in)``, ``N(0, 2/(fan_in + fan_out))``.
        kappa_out : float
            Initialization scale of the output weights, ``>= 0``.

        Returns
        -------
        numpy.ndarray
            ``theta`` of length :attr:`n_params`.
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        choice("init", init, INIT_SCHEMES)
        kappa_out = real("kappa_out", kappa_out, minimum=0.0)
        theta = np.zeros(self.n_params)
        layers = self.unflatten(theta)
        for (W, _b), fan_in, fan_out in zip(layers, self.sizes[:-1], self.sizes[1:], strict=True):
            var = {"lecun": 1.0 / fan_in, "he": 2.0 / fan_in, "glorot": 2.0 / (fan_in + fan_out)}[init]
            W[...] = rng.standard_normal((fan_out, fan_in)) * math.sqrt(var)
        layers[-1][0][...] *= kappa_out
        return theta

    def forward(self, theta: np.ndarray, inputs, x0) -> np.ndarray:
        """Network outputs ``x_i = N_theta(u_i)`` for all examples.

        Parameters
        ----------
        theta : numpy.ndarray
            Flat parameters.
        inputs : array_like, shape (n, d_in)
        x0 : array_like, shape (d,)
            The output shift (the BFGS default start).

        Returns
        -------
        numpy.ndarray, shape (n, d)
        """
        net = _Pass(self, self._check_theta(theta), self._check_inputs(inputs), self._check_x0(x0))
        return net.forward().copy()

    def vjp(self, theta: np.ndarray, inputs, x0, cotangent) -> np.ndarray:
        """Vector-Jacobian product ``sum_i (dN_theta(u_i)/dtheta)^T v_i`` by hand-written backprop.

        Parameters
        ----------
        theta : numpy.ndarray
            Flat parameters.
        inputs : array_like, shape (n, d_in)
        x0 : array_like, shape (d,)
        cotangent : array_like, shape (n, d)
            ``v_i``.

        Returns
        -------
        numpy.ndarray
            The flat gradient (same layout as ``theta``).
        """
        inputs = self._check_inputs(inputs)
        net = _Pass(self, self._check_theta(theta), inputs, self._check_x0(x0))
        cotangent = as_matrix("cotangent", cotangent)
        if cotangent.shape != (inputs.shape[0], self.d_out):
            raise ValueError(f"cotangent: expected shape {(inputs.shape[0], self.d_out)}, "
                             f"got {cotangent.shape}")
        net.forward()
        return net.backward(cotangent, np.empty(self.n_params))

    # -- validation ----------------------------------------------------------------------------

    def _check_theta(self, theta) -> np.ndarray:
        theta = as_matrix("theta", theta, ndim=(1,))
        if theta.shape != (self.n_params,):
            raise ValueError(f"theta: expected a vector of length {self.n_params} (the parameters of "
                             f"{self!r}), got shape {theta.shape}")
        # views of W_l and b_l must alias theta (Adam updates it in place)
        return np.ascontiguousarray(theta)

    def _check_inputs(self, inputs) -> np.ndarray:
        inputs = as_matrix("inputs", inputs)
        if inputs.shape[1] != self.d_in:
            raise ValueError(f"inputs: expected {self.d_in} columns (sizes[0]), got shape {inputs.shape}")
        return inputs

    def _check_x0(self, x0) -> np.ndarray:
        x0 = _as_x0(x0)
        if x0.shape != (self.d_out,):
            raise ValueError(f"x0: expected shape ({self.d_out},) (sizes[-1]), got {x0.shape}")
        return x0


def _transpose(a: np.ndarray) -> np.ndarray:
    """``a.T`` as a view that NumPy hands to BLAS.

    The transpose of an ``(m, 1)`` or ``(1, m)`` array has a stride pattern that ``np.matmul`` does not
    recognise as BLAS-compatible, and its fallback loop is ~10x slower (measured: 24 us against 2 us for
    ``(256, 1) @ (1, 32)``); the equivalent reshape of the contiguous array is a BLAS-ready view.
    """
    if (a.shape[0] == 1 or a.shape[1] == 1) and a.flags.c_contiguous:
        return a.reshape(a.shape[1], a.shape[0])
    return a.T


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = a @ b``; an inner dimension of 1 (``d_in = 1`` or ``d = 1``) as a broadcast product.

    With inner dimension 1 every entry is a single product, so the result is the same as the matrix
    product's, and NumPy's broadcasting multiply is ~5x faster than its ``matmul`` of that shape.
    """
    if a.shape[1] == 1:
        np.multiply(a, b, out=out)
    else:
        np.matmul(a, b, out=out)


def _as_x0(x0) -> np.ndarray:
    """``x0`` as a finite float64 vector (a scalar is a vector of length 1)."""
    try:
        arr = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"x0: expected a real vector, got {type(x0).__name__}") from exc
    return as_matrix("x0", arr, ndim=(1,))


class _Pass:
    """Forward and backward passes of one :class:`MLP` on fixed inputs, with preallocated arrays.

    ``theta`` is aliased, not copied: an in-place update of it (Adam) is seen by the next
    :meth:`forward`. Every array of a step is allocated here once, so a training step allocates
    nothing of size ``n``. :func:`joint_gradient` and :func:`train_jpo` both run these kernels.
    """

    def __init__(self, mlp: MLP, theta: np.ndarray, inputs: np.ndarray, x0: np.ndarray):
        n = inputs.shape[0]
        self.mlp, self.inputs, self.x0, self.n = mlp, inputs, x0, n
        self.layers = mlp.unflatten(theta)
        # transposed weights as BLAS-ready views (see _transpose); views of theta, so they follow it
        self.weights_t = [_transpose(W) for W, _ in self.layers]
        self.hidden = [np.empty((n, h)) for h in mlp.sizes[1:-1]]
        self.delta = [np.empty((n, h)) for h in mlp.sizes[1:-1]]
        self.scratch = [np.empty((n, h)) for h in mlp.sizes[1:-1]]
        self.output = np.empty((n, mlp.d_out))
        self.cotangent = np.empty((n, mlp.d_out))
        self.norms = np.empty(n)
        self.ones = np.ones(n)
        self._grad_buffer: np.ndarray | None = None
        self._grad_layers: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self) -> np.ndarray:
        """``x = x0 + W_L h_{L-1} + b_L`` into :attr:`output` (overwritten by the next call)."""
        h = self.inputs
        for (_, b), Wt, a in zip(self.layers[:-1], self.weights_t[:-1], self.hidden, strict=True):
            _matmul(h, Wt, a)
            a += b
            np.tanh(a, out=a)
            h = a
        x = self.output
        _matmul(h, self.weights_t[-1], x)
        x += self.layers[-1][1]
        x += self.x0
        return x

    def backward(self, cotangent: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``sum_i (dx_i/dtheta)^T v_i`` into ``out`` for the activations of the last :meth:`forward`."""
        if out is not self._grad_buffer:
            self._grad_buffer, self._grad_layers = out, self.mlp.unflatten(out)
        delta = cotangent
        for ell in range(self.mlp.n_layers - 1, -1, -1):
            h_prev = self.hidden[ell - 1] if ell > 0 else self.inputs
            gW, gb = self._grad_layers[ell]
            _matmul(_transpose(delta), h_prev, gW)
            # the sum over examples as a BLAS product: several times faster than np.sum(axis=0) here
            np.matmul(self.ones, delta, out=gb)
            if ell > 0:
                nxt = self.delta[ell - 1]
                _matmul(delta, self.layers[ell][0], nxt)
                tmp = self.scratch[ell - 1]  # tanh' = 1 - h^2
                np.multiply(h_prev, h_prev, out=tmp)
                np.subtract(1.0, tmp, out=tmp)
                nxt *= tmp
                delta = nxt
        return out


# --------------------------------------------------------------------------------------------
# per-example clipping (spec §4.3)


_CLIP_RE = re.compile(r"^\s*(none|elem|norm)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")


@dataclasses.dataclass(frozen=True)
class Clip:
    """A per-example gradient clip ``C`` (spec §4.3).

    Attributes
    ----------
    kind : {"none", "elem", "norm"}
        ``g``; ``max(-c, min(c, g))`` componentwise; ``g min(1, c/||g||_2)``.
    c : float or None
        Threshold ``> 0``; ``None`` means the default rule: the median over ``i`` of ``||g_i||_2`` at the
        first training step, computed once and then held fixed. Must be ``None`` for ``none``.
    """

    kind: str = "none"
    c: float | None = None

    def __post_init__(self):
        choice("clip", self.kind, CLIP_KINDS)
        if self.c is not None:
            if self.kind == "none":
                raise ValueError(f"clip: 'none' takes no threshold, got c={self.c!r}")
            object.__setattr__(self, "c", real("clip", self.c, minimum=0.0, strict=True))

    @classmethod
    def parse(cls, value: str | Clip | None) -> Clip:
        """Build a clip from ``"none"``, ``"elem"``, ``"norm"``, ``"elem(1.0)"``, ``"norm(0.5)"``, a
        :class:`Clip` or ``None`` (= ``none``).

        Raises
        ------
        ValueError
            If ``value`` is none of these, naming the argument ``clip``.
        """
        if value is None:
            return cls("none")
        if isinstance(value, Clip):
            return value
        if not isinstance(value, str):
            raise ValueError(f"clip: expected 'none', 'elem', 'norm', 'elem(c)', 'norm(c)' or a Clip, "
                             f"got {value!r}")
        m = _CLIP_RE.match(value)
        if m is None:
            raise ValueError(f"clip: expected 'none', 'elem', 'norm', 'elem(c)' or 'norm(c)', got {value!r}")
        kind, arg = m.group(1), m.group(2)
        if arg is None or arg == "" or arg == "median":
            return cls(kind)
        try:
            c = float(arg)
        except ValueError:
            raise ValueError(f"clip: threshold {arg!r} in {value!r} is not a number") from None
        return cls(kind, c)

    @property
    def resolved(self) -> bool:
        """Whether the threshold is known (always for ``none``)."""
        return self.kind == "none" or self.c is not None

    def resolve(self, grads: np.ndarray) -> Clip:
        """This clip with the default threshold filled in from ``grads`` (no-op if already resolved).

        Raises
        ------
        ValueError
            If the default threshold is 0 (more than half of the examples have a zero gradient): no
            ``c > 0`` exists by the default rule, so the caller must pass one.
        """
        if self.resolved:
            return self
        c = median_gradient_norm(grads)
        if not c > 0:
            raise ValueError(f"clip: the default threshold (median over examples of ||g_i||_2 at the first "
                             f"step) is {c!r}; pass an explicit threshold, e.g. '{self.kind}(1.0)'")
        return Clip(self.kind, c)

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        return f"{self.kind}({'median' if self.c is None else repr(self.c)})"


def median_gradient_norm(grads) -> float:
    """Spec §4.3 default threshold: ``median_i ||g_i||_2`` of per-example gradients ``grads (n, d)``."""
    grads = as_matrix("grads", grads)
    return float(np.median(_row_norms(grads, np.empty(grads.shape[0]))))


def clip_example_gradients(grads, clip: str | Clip, *, out: np.ndarray | None = None,
                           norms: np.ndarray | None = None) -> np.ndarray:
    """Apply the per-example clip ``C`` to every row ``g_i`` of ``grads`` (spec §4.3).

    Properties (tested): ``elem`` gives ``|C(g)_k| <= c`` exactly and leaves components with
    ``|g_k| <= c`` bitwise unchanged; ``norm`` replaces a row with ``||g_i|| > c`` by
    ``(g_i/||g_i||) c`` (so ``||C(g_i)|| = c`` up to rounding, direction kept) and leaves the other rows
    bitwise unchanged, zero rows included; norms are computed without overflow of the squares (rows
    beyond ``1e150`` or below ``1e-150`` are rescaled). Both preserve the sign of every component (for
    ``norm`` unless ``|g_k| c/||g_i||`` itself underflows below ``5e-324``).

    Parameters
    ----------
    grads : array_like, shape (n, d)
    clip : str or Clip
        A resolved clip (``c`` known), see :meth:`Clip.parse` and :meth:`Clip.resolve`.
    out : numpy.ndarray, optional
        Result buffer of shape ``(n, d)`` (may be ``grads`` itself).
    norms : numpy.ndarray, optional
        Scratch buffer of shape ``(n,)`` for ``norm``.

    Returns
    -------
    numpy.ndarray, shape (n, d)
    """
    clip = Clip.parse(clip)
    if not clip.resolved:
        raise ValueError(f"clip: {clip} has no threshold; resolve it first (Clip.resolve)")
    grads = as_matrix("grads", grads)
    if out is None:
        out = np.empty_like(grads)
    elif out.shape != grads.shape:
        raise ValueError(f"out: expected shape {grads.shape}, got {out.shape}")
    if norms is None:
        norms = np.empty(grads.shape[0])
    _clip_into(grads, clip.kind, clip.c, out, norms)
    return out


def _cotangent(grads, clip: Clip, n: int, ws: _Pass) -> np.ndarray:
    """``C(g_i)/n`` into the workspace's cotangent buffer (the output delta of backprop)."""
    cot = ws.cotangent
    if clip.kind == "none":
        np.divide(grads, n, out=cot)
    else:
        _clip_into(grads, clip.kind, clip.c, cot, ws.norms)
        np.divide(cot, n, out=cot)
    return cot


def _clip_into(grads, kind: str, c, out, norms) -> None:
    if kind == "none":
        if out is not grads:
            out[...] = grads
    elif kind == "elem":
        np.clip(grads, -c, c, out=out)
    else:
        _row_norms(grads, norms)
        if out is not grads:
            out[...] = grads
        over = norms > c
        if over.any():
            # (g/||g||) c rather than g (c/||g||): the unit vector cannot underflow where c/||g|| would
            # (||g|| > c/2.2e-308); rows within the threshold stay bitwise unchanged
            rows = out[over]
            rows /= norms[over][:, None]
            rows *= c
            out[over] = rows


_SQUARE_SAFE = (1e-150, 1e150)
"""Row norms inside this range are computed from unscaled squares without over- or underflow."""


def _row_norms(grads: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``||g_i||_2`` into ``out``; rows whose squares over- or underflow (``||g|| > ~1.3e154`` or tiny)
    are recomputed with the row's largest magnitude factored out."""
    np.einsum("ij,ij->i", grads, grads, out=out)
    np.sqrt(out, out=out)
    lo, hi = _SQUARE_SAFE
    unsafe = ~((out > lo) & (out < hi))
    if unsafe.any():
        idx = np.flatnonzero(unsafe)
        scale = np.max(np.abs(grads[idx]), axis=1)
        idx, scale = idx[scale != 0], scale[scale != 0]  # all-zero rows keep their exact norm 0
        rows = grads[idx] / scale[:, None]
        out[idx] = scale * np.sqrt(np.einsum("ij,ij->i", rows, rows))
    return out


# --------------------------------------------------------------------------------------------
# objective and gradient (spec §2.3)


@dataclasses.dataclass(frozen=True)
class JointGradient:
    """``J`` and its weight gradient at one parameter vector.

    Attributes
    ----------
    mean_loss : float
        ``J(theta) = (1/n) sum_i L_i(x_i)``.
    grad : numpy.ndarray
        Flat ``(1/n) sum_i (dN_theta(u_i)/dtheta)^T C(g_i)`` (equal to ``grad_theta J`` for ``none``).
    outputs : numpy.ndarray, shape (n, d)
        ``x_i = N_theta(u_i)``.
    losses : numpy.ndarray, shape (n,)
    example_grads : numpy.ndarray, shape (n, d)
        ``g_i`` as returned by the callback.
    clipped_grads : numpy.ndarray, shape (n, d)
        ``C(g_i)``.
    clip : Clip
        The resolved clip.
    """

    mean_loss: float
    grad: np.ndarray
    outputs: np.ndarray
    losses: np.ndarray
    example_grads: np.ndarray
    clipped_grads: np.ndarray
    clip: Clip


def _call_loss(loss_and_grad: LossAndGrad, x: np.ndarray, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Call the callback and check the shapes it returns (finiteness is checked by the caller)."""
    result = loss_and_grad(x)
    try:
        losses, grads = result
    except (TypeError, ValueError):
        raise ValueError(f"loss_and_grad: must return (losses, grads), got {type(result).__name__}") from None
    if not (isinstance(losses, np.ndarray) and losses.dtype == np.float64):
        losses = np.asarray(losses, dtype=np.float64)
    if not (isinstance(grads, np.ndarray) and grads.dtype == np.float64):
        grads = np.asarray(grads, dtype=np.float64)
    if losses.shape != (n,):
        raise ValueError(f"loss_and_grad: losses must have shape ({n},) (one per example), "
                         f"got {losses.shape}")
    if grads.shape != (n, d):
        raise ValueError(f"loss_and_grad: grads must have shape ({n}, {d}), got {grads.shape}")
    return losses, grads


def _nonfinite_examples(x: np.ndarray, losses: np.ndarray, grads: np.ndarray) -> list[int]:
    """Indices of the examples with a non-finite output, loss or gradient."""
    if math.isfinite(float(np.sum(x)) + float(np.sum(losses)) + float(np.sum(grads))):
        # a NaN or inf anywhere makes the sum non-finite; the converse fails only on overflow of
        # the sum of finite terms, which the exact check below sorts out
        return []
    bad = ~np.all(np.isfinite(x), axis=1) | ~np.isfinite(losses) | ~np.all(np.isfinite(grads), axis=1)
    return [int(i) for i in np.flatnonzero(bad)]


def _all_finite(a: np.ndarray) -> bool:
    return math.isfinite(float(np.sum(a))) or bool(np.all(np.isfinite(a)))


def joint_gradient(mlp: MLP, theta: np.ndarray, inputs, x0, loss_and_grad: LossAndGrad,
                   clip: str | Clip = "none") -> JointGradient:
    """``J(theta)`` and the (clipped) joint weight gradient of spec §2.3, by hand-written backprop.

    This is the computation of one training step of :func:`train_jpo` (same kernels, same order), so
    checks of it check the training code.

    Parameters
    ----------
    mlp : MLP
    theta : numpy.ndarray
        Flat parameters.
    inputs : array_like, shape (n, d_in)
    x0 : array_like, shape (d,)
    loss_and_grad : callable
        ``x (n, d) -> (losses (n,), grads (n, d))``.
    clip : str or Clip
        An unresolved clip takes the default threshold from the gradients at ``theta``.

    Returns
    -------
    JointGradient

    Raises
    ------
    ValueError
        On bad arguments, or if the callback returns wrong shapes or non-finite values.
    """
    theta = mlp._check_theta(theta)
    inputs = mlp._check_inputs(inputs)
    x0 = mlp._check_x0(x0)
    if not callable(loss_and_grad):
        raise ValueError(f"loss_and_grad: expected a callable, got {type(loss_and_grad).__name__}")
    clip = Clip.parse(clip)
    n, d = inputs.shape[0], mlp.d_out
    net = _Pass(mlp, theta, inputs, x0)
    x = net.forward()
    x.flags.writeable = False
    losses, grads = _call_loss(loss_and_grad, x, n, d)
    bad = _nonfinite_examples(x, losses, grads)
    if bad:
        raise ValueError(f"loss_and_grad: non-finite outputs, losses or gradients for examples {bad[:10]}")
    clip = clip.resolve(grads)
    clipped = np.empty((n, d))
    _clip_into(grads, clip.kind, clip.c, clipped, net.norms)
    grad = net.backward(_cotangent(grads, clip, n, net), np.empty(mlp.n_params))
    return JointGradient(mean_loss=float(np.mean(losses)), grad=grad, outputs=x.copy(), losses=losses.copy(),
                         example_grads=grads.copy(), clipped_grads=clipped, clip=clip)


# --------------------------------------------------------------------------------------------
# Adam (spec §4.2)


@dataclasses.dataclass(frozen=True)
class AdamConfig:
    """Adam hyperparameters (spec §4.2 defaults).

    Attributes
    ----------
    lr : float
        Learning rate, ``> 0``.
    beta1, beta2 : float
        Moment decay rates in ``[0, 1)``.
    eps : float
        Denominator offset, ``> 0``.
    """

    lr: float = DEFAULT_LR
    beta1: float = DEFAULT_BETAS[0]
    beta2: float = DEFAULT_BETAS[1]
    eps: float = DEFAULT_EPS

    def __post_init__(self):
        object.__setattr__(self, "lr", real("lr", self.lr, minimum=0.0, strict=True))
        for name in ("beta1", "beta2"):
            value = real("betas", getattr(self, name), minimum=0.0)
            if not value < 1.0:
                raise ValueError(f"betas: {name} must be < 1, got {value!r}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "eps", real("eps", self.eps, minimum=0.0, strict=True))


class Adam:
    """Bias-corrected Adam with preallocated moment buffers.

    Step ``t = 1, 2, ...``: ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
    ``theta -= (lr/(1 - beta1^t)) m / (sqrt(v/(1 - beta2^t)) + eps)``.

    Parameters
    ----------
    n_params : int
    config : AdamConfig
    """

    def __init__(self, n_params: int, config: AdamConfig | None = None):
        n_params = positive_int("n_params", n_params)
        self.config = config if config is not None else AdamConfig()
        self.m = np.zeros(n_params)
        self.v = np.zeros(n_params)
        self.t = 0
        self._tmp = np.empty(n_params)
        self._tmp2 = np.empty(n_params)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Update ``theta`` in place with gradient ``grad`` (no validation: the training loop's kernel)."""
        cfg = self.config
        self.t += 1
        m, v, tmp, tmp2 = self.m, self.v, self._tmp, self._tmp2
        m *= cfg.beta1
        np.multiply(grad, 1.0 - cfg.beta1, out=tmp)
        m += tmp
        v *= cfg.beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - cfg.beta2
        v += tmp
        bc1 = 1.0 - cfg.beta1 ** self.t
        bc2 = 1.0 - cfg.beta2 ** self.t
        np.divide(v, bc2, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += cfg.eps
        np.divide(m, bc1, out=tmp2)
        np.divide(tmp2, tmp, out=tmp)
        tmp *= cfg.lr
        theta -= tmp


def adam_update(theta, grad, m, v, t: int, config: AdamConfig | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pure form of one :class:`Adam` step (same kernel): returns ``(theta, m, v)`` after step ``t``.

    Parameters
    ----------
    theta, grad, m, v : array_like, shape (p,)
        Parameters, gradient and the moments after step ``t - 1``.
    t : int
        The step number, ``>= 1``.
    config : AdamConfig, optional
    """
    t = positive_int("t", t)
    theta = as_matrix("theta", theta, ndim=(1,)).copy()
    grad = as_matrix("grad", grad, ndim=(1,))
    m = as_matrix("m", m, ndim=(1,))
    v = as_matrix("v", v, ndim=(1,))
    for name, arr in (("grad", grad), ("m", m), ("v", v)):
        if arr.shape != theta.shape:
            raise ValueError(f"{name}: expected shape {theta.shape}, got {arr.shape}")
    opt = Adam(theta.shape[0], config)
    opt.m[...] = m
    opt.v[...] = v
    opt.t = t - 1
    opt.step(theta, grad)
    return theta, opt.m, opt.v


# --------------------------------------------------------------------------------------------
# training (spec §4)


@dataclasses.dataclass(frozen=True)
class JPOResult:
    """The outcome of :func:`train_jpo`.

    Attributes
    ----------
    mlp : MLP
    theta : numpy.ndarray
        Final flat parameters (the final iterate, spec §4.2).
    theta0 : numpy.ndarray
        Initial parameters.
    outputs : numpy.ndarray, shape (n, d)
        ``x_JPO = N_theta(u_i)`` at the final parameters.
    final_losses : numpy.ndarray, shape (n,)
        ``L_i(x_JPO_i)``.
    history_steps : numpy.ndarray of int
        Numbers of completed Adam updates at which ``J`` was recorded: ``0, r, 2r, ...`` and ``steps``.
    history_loss : numpy.ndarray
        ``J`` at those parameters.
    clip : Clip
        The clip used, with its threshold resolved.
    steps, seed, network_seed : int
        ``S_train``, the data seed ``s`` and ``1000 + s``.
    init : str
    kappa_out : float
    adam : AdamConfig
    evaluations : int
        Loss-and-gradient evaluations of training, ``steps * n`` (spec §5.4).
    final_evaluations : int
        The ``n`` further evaluations giving :attr:`final_losses`.
    """

    mlp: MLP
    theta: np.ndarray
    theta0: np.ndarray
    outputs: np.ndarray
    final_losses: np.ndarray
    history_steps: np.ndarray
    history_loss: np.ndarray
    clip: Clip
    steps: int
    seed: int
    network_seed: int
    init: str
    kappa_out: float
    adam: AdamConfig
    evaluations: int
    final_evaluations: int

    @property
    def n(self) -> int:
        return int(self.outputs.shape[0])

    @property
    def mean_loss(self) -> float:
        """``J`` at the final parameters."""
        return float(np.mean(self.final_losses))

    @property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W_1, b_1), ..., (W_L, b_L)]`` views of :attr:`theta`."""
        return self.mlp.unflatten(self.theta)

    @property
    def counters(self) -> dict[str, int]:
        return {"steps": self.steps, "examples": self.n, "loss_grad_evaluations": self.evaluations,
                "final_evaluations": self.final_evaluations}


def _resolve_sizes(sizes, hidden, d_in: int, d: int) -> tuple[int, ...]:
    if sizes is not None and hidden is not None:
        raise ValueError("sizes: pass either sizes or hidden, not both")
    if sizes is None:
        hidden = DEFAULT_HIDDEN if hidden is None else hidden
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence | np.ndarray):
            raise ValueError(f"hidden: expected a sequence of hidden sizes, got {hidden!r}")
        for h in hidden:
            positive_int("hidden", h)
        return (d_in, *(int(h) for h in hidden), d)
    mlp = MLP(sizes)
    if mlp.d_in != d_in:
        raise ValueError(f"sizes: sizes[0] = {mlp.d_in} but inputs have {d_in} columns")
    if mlp.d_out != d:
        raise ValueError(f"sizes: sizes[-1] = {mlp.d_out} but x0 has length {d}")
    return mlp.sizes


def _check_betas(betas) -> tuple[float, float]:
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    return betas[0], betas[1]


def train_jpo(inputs, loss_and_grad: LossAndGrad, x0, *, sizes: Sequence[int] | None = None,
              hidden: Sequence[int] | None = None, steps: int = DEFAULT_STEPS, lr: float = DEFAULT_LR,
              betas: tuple[float, float] = DEFAULT_BETAS, eps: float = DEFAULT_EPS,
              clip: str | Clip = "none", kappa_out: float = 1.0, init: str = "lecun", seed: int = 0,
              record_every: int = 100, progress: Callable[[int, float], Any] | None = None) -> JPOResult:
    """Train one shared MLP jointly on ``n`` inverse problems (JPO, spec §2.3, §4).

    Full-batch bias-corrected Adam on ``J(theta) = (1/n) sum_i L_i(N_theta(u_i))`` for ``steps``
    updates; the final iterate is returned (no early stopping, no best-iterate selection).

    The routine sees only ``inputs`` and ``loss_and_grad`` (§4.4): no ground truth is reachable from it.

    Parameters
    ----------
    inputs : array_like, shape (n, d_in)
        Network inputs ``u_i``, used raw (§4.1).
    loss_and_grad : callable
        ``x (n, d) -> (losses (n,), grads (n, d))``. It is called ``steps + 1`` times. The ``x`` it
        receives is a read-only buffer reused across steps: copy it to keep it.
    x0 : array_like, shape (d,)
        The output shift, the problem's BFGS default start (§4.1).
    sizes : sequence of int, optional
        ``[d_in, h_1, h_2, d]`` (any number of hidden layers); must match ``inputs`` and ``x0``.
    hidden : sequence of int, optional
        Hidden sizes only (default :data:`DEFAULT_HIDDEN`); not together with ``sizes``.
    steps : int
        ``S_train >= 1`` (default 3000).
    lr, betas, eps : float
        Adam hyperparameters (default ``1e-3``, ``(0.9, 0.999)``, ``1e-8``).
    clip : str or Clip
        ``"none"``, ``"elem"``, ``"norm"`` (default threshold: median of ``||g_i||_2`` at step 0, then
        fixed), ``"elem(c)"``, ``"norm(c)"``, or a :class:`Clip`.
    kappa_out : float
        Initialization scale of ``W_L``, ``>= 0`` (1 by default, 0.1 for the wave packet).
    init : {"lecun", "he", "glorot"}
        Weight initialization; ``lecun`` is the spec's ``N(0, 1/fan_in)``.
    seed : int
        The data seed ``s >= 0``; the network is initialized from ``default_rng(1000 + s)``.
    record_every : int
        Record ``J`` every ``record_every`` updates (and after the last one).
    progress : callable, optional
        ``progress(step, mean_loss)``, called at every recorded step.

    Returns
    -------
    JPOResult

    Raises
    ------
    ValueError
        On bad arguments (naming them), if the callback returns wrong shapes, or if it returns
        non-finite values at the initial outputs (a problem that is broken before any training).
    DivergenceError
        If the callback returns non-finite losses or gradients after training started, or the
        parameters become non-finite; ``iteration`` is the number of completed updates.
    """
    # private read-only copies: nothing the callback does to the caller's arrays can change a run
    inputs = as_matrix("inputs", inputs).copy()
    x0 = _as_x0(x0).copy()
    inputs.flags.writeable = x0.flags.writeable = False
    if not callable(loss_and_grad):
        raise ValueError(f"loss_and_grad: expected a callable, got {type(loss_and_grad).__name__}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress: expected a callable or None, got {type(progress).__name__}")
    n, d_in = inputs.shape
    d = x0.shape[0]
    mlp = MLP(_resolve_sizes(sizes, hidden, d_in, d))
    steps = positive_int("steps", steps)
    record_every = positive_int("record_every", record_every)
    seed = positive_int("seed", seed, minimum=0)
    beta1, beta2 = _check_betas(betas)
    config = AdamConfig(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    clip = Clip.parse(clip)
    choice("init", init, INIT_SCHEMES)
    kappa_out = real("kappa_out", kappa_out, minimum=0.0)

    network_seed = NETWORK_SEED_OFFSET + seed
    theta = mlp.init(np.random.default_rng(network_seed), init=init, kappa_out=kappa_out)
    theta0 = theta.copy()
    net = _Pass(mlp, theta, inputs, x0)
    opt = Adam(mlp.n_params, config)
    grad = np.empty(mlp.n_params)
    x = net.output
    rec_steps: list[int] = []
    rec_loss: list[float] = []
    last_record: dict[str, float] = {}

    def evaluate(t: int) -> tuple[np.ndarray, np.ndarray]:
        x.flags.writeable = True
        net.forward()
        x.flags.writeable = False  # the callback may read x, never modify it
        losses, grads = _call_loss(loss_and_grad, x, n, d)
        bad = _nonfinite_examples(x, losses, grads)
        if bad:
            if t == 0:
                raise ValueError(f"loss_and_grad: non-finite losses or gradients at the initial network "
                                 f"outputs for examples {bad[:10]}")
            raise DivergenceError(t, "non-finite network outputs, losses or gradients", dict(last_record),
                                  bad)
        return losses, grads

    def record(t: int, losses: np.ndarray) -> None:
        J = float(np.mean(losses))
        rec_steps.append(t)
        rec_loss.append(J)
        last_record.clear()
        last_record.update({"step": t, "mean_loss": J})
        if progress is not None:
            progress(t, J)

    # Overflow inside a step shows up as inf/NaN, which the checks turn into DivergenceError; the
    # warnings themselves would only duplicate that (and the test suite makes them errors).
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for t in range(steps):
            losses, grads = evaluate(t)
            if t == 0:
                clip = clip.resolve(grads)
            if t % record_every == 0:
                record(t, losses)
            net.backward(_cotangent(grads, clip, n, net), grad)
            opt.step(theta, grad)
            if not _all_finite(theta):
                raise DivergenceError(t + 1, "non-finite network parameters after the Adam update",
                                      dict(last_record), [])
        losses, _ = evaluate(steps)
        record(steps, losses)
    x.flags.writeable = True
    return JPOResult(mlp=mlp, theta=theta, theta0=theta0, outputs=x.copy(), final_losses=losses.copy(),
                     history_steps=np.array(rec_steps, dtype=np.int64), history_loss=np.array(rec_loss),
                     clip=clip, steps=steps, seed=seed, network_seed=network_seed, init=init,
                     kappa_out=kappa_out, adam=config, evaluations=steps * n, final_evaluations=n)


# --------------------------------------------------------------------------------------------
# JPO + BFGS refinement (spec §2.4)


@dataclasses.dataclass(frozen=True)
class JPOBFGSResult:
    """JPO followed by per-example refinement.

    Attributes
    ----------
    jpo : JPOResult or None
        The training run (``None`` when :func:`refine_outputs` was given bare starts).
    starts : numpy.ndarray, shape (n, d)
        The refinement starts ``x_JPO``.
    x : numpy.ndarray, shape (n, d)
        The refined solutions ``x_JPO+BFGS``.
    refinement : Any
        Whatever ``refine`` returned (the BFGS wrapper's per-call records and counters).
    """

    jpo: JPOResult | None
    starts: np.ndarray
    x: np.ndarray
    refinement: Any


def refine_outputs(starts, refine: Callable[[np.ndarray], Any], *,
                   jpo: JPOResult | None = None) -> JPOBFGSResult:
    """Refine JPO solutions per example: ``x_JPO+BFGS_i = BFGS(L_i; x_JPO_i)`` (spec §2.4).

    Parameters
    ----------
    starts : array_like, shape (n, d)
        The starts (``JPOResult.outputs``); ``refine`` receives a copy.
    refine : callable
        ``refine(starts (n, d))`` returning the refined solutions as an array ``(n, d)`` or an object
        with such an attribute ``x`` (e.g. the batch result of ``dynamics/bfgs_reference.py``).
    jpo : JPOResult, optional
        Stored in the result.

    Returns
    -------
    JPOBFGSResult

    Raises
    ------
    ValueError
        If ``starts`` is not a finite ``(n, d)`` array, ``refine`` is not callable, or it returns
        something without finite ``(n, d)`` solutions.
    """
    starts = as_matrix("starts", starts).copy()
    if not callable(refine):
        raise ValueError(f"refine: expected a callable, got {type(refine).__name__}")
    returned = refine(starts.copy())
    x = returned.x if hasattr(returned, "x") else returned
    try:
        x = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"refine: must return an (n, d) array or an object with one as .x, got "
                         f"{type(returned).__name__}") from None
    if x.shape != starts.shape:
        raise ValueError(f"refine: returned solutions of shape {x.shape}, expected {starts.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
        raise ValueError(f"refine: returned non-finite solutions for examples {bad[:10].tolist()}")
    return JPOBFGSResult(jpo=jpo, starts=starts, x=x, refinement=returned)


def train_jpo_bfgs(inputs, loss_and_grad: LossAndGrad, x0, refine: Callable[[np.ndarray], Any],
                   **train_kwargs) -> JPOBFGSResult:
    """JPO (:func:`train_jpo` with ``train_kwargs``) followed by :func:`refine_outputs` (spec §2.4)."""
    result = train_jpo(inputs, loss_and_grad, x0, **train_kwargs)
    return refine_outputs(result.outputs, refine, jpo=result)


__all__ = ["CLIP_KINDS", "DEFAULT_BETAS", "DEFAULT_EPS", "DEFAULT_HIDDEN", "DEFAULT_LR", "DEFAULT_STEPS",
           "INIT_SCHEMES", "MLP", "NETWORK_SEED_OFFSET", "Adam", "AdamConfig", "Clip", "JPOBFGSResult",
           "JPOResult", "JointGradient", "LossAndGrad", "adam_update",
           "clip_example_gradients", "joint_gradient", "median_gradient_norm", "refine_outputs",
           "train_jpo", "train_jpo_bfgs"]

