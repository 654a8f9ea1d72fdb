"""Hypothesis strategies that build valid instances by construction.

Structure (orthonormal ``R``, full-rank ``A R`` and ``Z``, ``m < d``, ``n >= s``) is guaranteed by
how the sizes are drawn and how :func:`dynamics.deep_linear.make_data` builds the matrices from a
drawn seed, so no strategy needs ``assume()``. Imported by the tests and by counterexample search;
needs the ``test`` extra (hypothesis).
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from verification.dip_instances import DIPSpec
from verification.dln_instances import DLNSpec


@st.composite
def dln_specs(draw, *, max_s: int = 3, max_L: int = 5, steps: tuple[int, int] = (0, 120),
              lam_zero: bool | None = None, conventions: tuple[str, ...] = ("talk", "pytorch_wd",
                                                                            "mean"),
              updates: tuple[str, ...] = ("standard",), inits: tuple[str, ...] = (
                  "lecun_normal", "kaiming_normal_relu", "torch_default", "orthogonal"),
              designs: tuple[str, ...] = ("gaussian", "prescribed_rip"),
              min_width_rank: bool = False, max_k: float = 1.0) -> DLNSpec:
    """Draw a small :class:`~verification.dln_instances.DLNSpec`.

    ``lam`` is drawn relative to the data scale (``lam = lam_rel``, data have unit-order singular
    values); ``k`` in ``[0.05, max_k]`` keeps the step below the ``gn_bound`` theory step.
    ``min_width_rank`` forces ``d_w >= s``.
    """
    s = draw(st.integers(1, max_s))
    m = s + draw(st.integers(1, 8))
    d = m + draw(st.integers(1, 10))
    n = s + draw(st.integers(0, 20))
    L = draw(st.integers(1, max_L))
    d_w = draw(st.integers(s if min_width_rank else 1, 24))
    if lam_zero is None:
        lam = draw(st.one_of(st.just(0.0), st.floats(-4, -1).map(lambda e: 10.0**e)))
    elif lam_zero:
        lam = 0.0
    else:
        lam = draw(st.floats(-4, -0.5).map(lambda e: 10.0**e))
    return DLNSpec(
        d=d, m=m, s=s, n=n, L=L, d_w=d_w, lam=lam,
        k=draw(st.floats(0.05, max_k)),
        init=draw(st.sampled_from(inits)),
        convention=draw(st.sampled_from(conventions)),
        update=draw(st.sampled_from(updates)),
        design=draw(st.sampled_from(designs)),
        z_log10_cond=draw(st.sampled_from([0.0, 0.0, 1.0, 2.5])),
        steps=draw(st.integers(*steps)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@st.composite
def dip_specs(draw, *, max_n: int = 10, max_k: int = 4096, t_R: tuple[float, float] = (0.02, 0.98),
              losses: tuple[str, ...] = ("mse", "power", "huber"),
              activations: tuple[str, ...] = ("tanh", "sigmoid", "softplus"),
              step_c: tuple[float, float] = (0.05, 1.0), steps: tuple[int, int] = (50, 400),
              natural: bool = False, noise: tuple[float, float] | None = None,
              min_k_factor: int = 1, m_range: tuple[float, float] = (0.5, 2.0),
              target: str = "base") -> DIPSpec:
    """Draw a :class:`~verification.dip_instances.DIPSpec` valid by construction (spec §10.5).

    ``k = n 2^j`` with ``2^j >= min_k_factor`` (so ``k >= n``); ``m`` in ``[m_range[0] n, m_range[1] n]``
    (at least 1); the certificate ratio ``t_R`` is imposed by constructing ``y`` (not filtered),
    unless ``natural``. ``noise`` gives the range of ``noise_rel`` (default: noiseless).
    """
    n = draw(st.integers(2, max_n))
    j_max = max(0, math.floor(math.log2(max_k / n)))
    j_min = min(j_max, math.ceil(math.log2(min_k_factor)) if min_k_factor > 1 else 0)
    k = n * 2 ** draw(st.integers(j_min, j_max))
    m = draw(st.integers(max(1, math.ceil(m_range[0] * n)), max(1, int(m_range[1] * n))))
    loss = draw(st.sampled_from(losses))
    return DIPSpec(
        n=n, m=m, k=k, d=draw(st.integers(1, 6)),
        activation=draw(st.sampled_from(activations)),
        v_law=draw(st.sampled_from(("rademacher", "uniform"))),
        cond=draw(st.floats(1.0, 10.0)),
        loss=loss,
        p=draw(st.floats(2.0, 6.0)) if loss == "power" else 3.0,
        huber_rel=draw(st.floats(-2, 1).map(lambda e: 10.0**e)) if loss == "huber" else 0.1,
        t_R=None if natural else draw(st.floats(*t_R)),
        target=target,
        # Noise levels far below rounding (1e-306) only exercise underflow in norms, not the theory.
        noise_rel=0.0 if noise is None else draw(st.one_of(
            st.just(float(noise[0])), st.floats(max(noise[0], 1e-8), noise[1]))),
        step_c=draw(st.floats(*step_c)),
        steps=draw(st.integers(*steps)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


# --------------------------------------------------------------------------------------------
# counterexample search: perturbations of a claim's own instances (verification.hunt)

_SEED_MAX = 2**31 - 1


def _perturbed_field(name: str, value, *, top_level: bool):
    """The strategy of one field value (``None``: keep the value).

    The unperturbed value comes first in ``one_of`` so that shrinking walks back towards the
    instance the claim's author wrote, and a shrunk counterexample changes only the fields that
    matter.
    """
    import dataclasses

    if top_level and name == "seed" and isinstance(value, int) and not isinstance(value, bool):
        return st.integers(0, _SEED_MAX)
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        if value == 0:
            return None
        sign = 1 if value > 0 else -1
        mag = abs(value)
        return st.one_of(st.just(value), st.integers(max(1, mag // 2), 2 * mag).map(lambda x: sign * x))
    if isinstance(value, float):
        if value == 0.0 or not math.isfinite(value):
            return None
        sign = 1.0 if value > 0 else -1.0
        mag = abs(value)
        lo = math.log(mag / 4.0) if mag / 4.0 > 0 else math.log(mag)
        hi = min(math.log(mag) + math.log(4.0), math.log(1.7976931348623157e308))
        return st.one_of(st.just(value), st.floats(lo, hi).map(lambda e: sign * math.exp(e)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _perturbed_one(value, top_level=False)
    if isinstance(value, tuple) and any(dataclasses.is_dataclass(v) and not isinstance(v, type)
                                        for v in value):
        parts = [_perturbed_field(name, v, top_level=False) for v in value]
        return st.tuples(*[st.just(v) if s is None else s for s, v in zip(parts, value, strict=True)])
    # Tuples of numbers are grids (sorted, distinct, matched to other fields): kept as they are.
    return None


class _Rejected(Exception):
    """A drawn field combination that the spec's ``__post_init__`` refused."""


def _perturbed_one(base, *, top_level: bool):
    import dataclasses

    strategies = {}
    for f in dataclasses.fields(base):
        if not f.init:
            continue
        s = _perturbed_field(f.name, getattr(base, f.name), top_level=top_level)
        strategies[f.name] = st.just(getattr(base, f.name)) if s is None else s

    def build(values: dict):
        for v in values.values():
            inner = _contains_rejected(v)
            if inner is not None:
                return inner
        try:
            return dataclasses.replace(base, **values)
        except (ValueError, TypeError) as exc:
            return _Rejected(f"{type(base).__name__}: {str(exc).splitlines()[0][:120]}")

    return st.fixed_dictionaries(strategies).map(build)


def _contains_rejected(value) -> _Rejected | None:
    # A refused nested spec travels up as a _Rejected value (directly or inside a tuple field).
    if isinstance(value, _Rejected):
        return value
    if isinstance(value, tuple):
        for v in value:
            r = _contains_rejected(v)
            if r is not None:
                return r
    return None


@st.composite
def perturbed_specs(draw, bases, *, on_reject=None):
    """Draw one of ``bases`` (instance specs) with its fields perturbed (counterexample search).

    Each field is either kept (probability about 1/2; shrinking prefers keeping it) or perturbed:

    * the top-level ``seed``: any integer in ``[0, 2**31 - 1]`` (always redrawn);
    * other ints ``v != 0``: uniform in ``[max(1, |v| // 2), 2 |v|]``, sign kept (``0`` stays ``0``:
      zero-valued ints are switches such as ``train_steps=0`` or ``record_every=0``);
    * floats ``v != 0``: log-uniform in ``[|v|/4, 4 |v|]``, sign kept (``0.0``, inf, NaN stay);
    * strings, booleans, ``None`` and tuples of numbers (grids): unchanged;
    * nested specs (a spec field, or a tuple of specs such as ``JPOSweepSpec.configs``): perturbed
      by the same rules, their ``seed`` treated as an ordinary int.

    A combination that the spec's ``__post_init__`` refuses (``ValueError``/``TypeError``) is
    rejected with :func:`hypothesis.reject` after calling ``on_reject(message)``.

    Parameters
    ----------
    bases : sequence of dataclass instances
        The claim's instances to start from (e.g. its ``quick`` profile).
    on_reject : callable, optional
        Called with a one-line reason for every rejected draw (the hunt counts them).
    """
    import dataclasses

    from hypothesis import reject

    bases = list(bases)
    if not bases or not all(dataclasses.is_dataclass(b) and not isinstance(b, type) for b in bases):
        raise ValueError(f"bases: need a non-empty sequence of dataclass instances, got {bases!r}")
    base = draw(st.sampled_from(bases))
    spec = draw(_perturbed_one(base, top_level=True))
    bad = _contains_rejected(spec)
    if bad is not None:
        if on_reject is not None:
            on_reject(str(bad))
        reject()
    return spec
