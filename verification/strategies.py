"""Hypothesis strategies that build valid instances by construction.

Structure (orthonormal ``R``, full-rank ``A R`` and ``Z``, ``m < d``, ``n >= s``) is guaranteed by
how the sizes are drawn and how :func:`dynamics.deep_linear.make_data` builds the matrices from a
drawn seed, so no strategy needs ``assume()``. Imported by the tests and by counterexample search;
needs the ``test`` extra (hypothesis).
"""

from __future__ import annotations

from hypothesis import strategies as st

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
