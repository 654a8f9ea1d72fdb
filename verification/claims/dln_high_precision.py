"""Deep-linear identities at 50 digits (class H): D0, D1, D2, D3, D6-i/ii, D9 and the gradient (F).

On tiny instances the whole instance is rebuilt in a private mpmath context
(:mod:`verification.oracle`): ``A`` and ``Z`` are lifted exactly, ``R`` is orthonormalized at
50 digits and ``X = R Z``, ``Y = A X`` are formed there, so the mp instance satisfies (H1)-(H3)
exactly (its float64 rounding does not: ``fl(A fl(R Z))`` has full rank, with singular values
``~u`` beyond ``s``). GD runs through the same :func:`dynamics.deep_linear.gd_step` on object
arrays of ``mpf``. Every [derived] identity must then hold with a residual ``<= 1e-40`` times its
class-U/P scale: at 50 digits (169 bits, unit roundoff ``2^-169 ~ 1.3e-51``) the rounding part of
the residual is ``~1e-50`` relative, so ``1e-40`` leaves ten digits of headroom for the dimension
and step-count factors and still sits 24 digits below anything float64 could resolve.

The float64 library is then compared with the mp reference within the float64 tolerance classes
(:mod:`verification.tolerance`): the GD trajectory (class U, pure rounding drift of the same
``gd_step``), the gradient (class U), the oracle, the data oracle, the projector and the RIP
constant (class P).
"""

from __future__ import annotations

import numpy as np

from bounds import dln_weight_decay as dlb
from dynamics import deep_linear as dl
from verification import oracle as mpo
from verification import tolerance as tol
from verification.dln_instances import DLNSpec, materialize, trajectory
from verification.engine import Evidence, Hypothesis, Kind, claim

REF = "docs/theory/deep_linear.md"
DPS = 50
REL = 1e-40
"""Class H: relative residual allowed for an exact identity evaluated at ``DPS`` digits."""
FD_STEP = "1e-20"
FD_REL = 1e-30
"""Class F at high precision: central differences with ``h = 1e-20``, relative error ``<= 1e-30``."""
N_RIP_PROBES = 32

TINY_SIZES = Hypothesis(
    "tiny_sizes", "class H sizes: d <= 6, m <= 4, s <= 2, d_w <= 8, L <= 3, n <= 3, steps <= 20",
    lambda sp: (sp.d <= 6 and sp.m <= 4 and sp.s <= 2 and sp.d_w <= 8 and sp.L <= 3
                and sp.n <= 3 and sp.steps <= 20))

_TINY = DLNSpec(d=6, m=4, s=2, n=3, L=3, d_w=8, lam=0.1, steps=20)


class _MP:
    """The exact (H1)-(H3) instance of a spec in a private 50-digit context, plus helpers."""

    def __init__(self, spec: DLNSpec):
        self.spec = spec
        self.inst = inst = materialize(spec)
        self.ctx = ctx = mpo.make_context(DPS)
        self.R = mpo.orthonormalize(inst.data.R, ctx)
        self.A = mpo.lift(inst.data.A, ctx, "A")
        self.Z = mpo.lift(inst.data.Z, ctx, "Z")
        self.X = self.R @ self.Z
        self.Y = self.A @ self.X
        self.AR = self.A @ self.R
        self.W0 = [mpo.lift(W, ctx, "weights0") for W in inst.weights0]
        # The float64 hyperparameters, lifted exactly: both number systems run the same step.
        self.eta, self.lam = ctx.mpf(float(inst.eta)), ctx.mpf(float(spec.lam))
        self.a, self.c = ctx.mpf(float(inst.a)), ctx.mpf(float(inst.c))
        self.lam_bar = 2 * self.c * self.lam
        self.step_kw = {"eta": self.eta, "lam": self.lam, "a": self.a, "c": self.c,
                        "update": spec.update}
        self.P_perp = mpo.identity(spec.m, ctx) - self.Y @ mpo.pinv(self.Y, ctx, spec.s)

    def f64(self, x) -> float:
        return mpo.to_float64(x, self.ctx)

    def fro(self, B) -> float:
        return self.f64(mpo.fro_norm(B, self.ctx))

    def fro_mp(self, B):
        return mpo.fro_norm(B, self.ctx)

    def spec2(self, B) -> float:
        # Scales only need the magnitude: the float64 spectral norm of the rounded matrix.
        return float(np.linalg.norm(mpo.to_float64_array(B, self.ctx), 2))


def _rel(ev: Evidence, label: str, hp: _MP, residual, scale: float, **witness) -> None:
    ev.compare(label, hp.f64(residual) if not isinstance(residual, float) else residual,
               REL * float(scale), **witness)


def _check_d1(ev: Evidence, hp: _MP) -> dict:
    ctx, s = hp.ctx, hp.spec.s
    Yp = mpo.pinv(hp.Y, ctx, s)
    M0_data = hp.X @ Yp
    M0 = hp.R @ mpo.pinv(hp.AR, ctx, s)
    sv_ar = mpo.singular_values(hp.AR, ctx)
    sv_y = mpo.singular_values(hp.Y, ctx)
    sv_z = mpo.singular_values(hp.Z, ctx)
    m0_fro = hp.fro(M0)
    _rel(ev, "D1 X Y^+ = R (A R)^+", hp, hp.fro_mp(M0_data - M0), m0_fro)
    _rel(ev, "D1 X Y^+ A R = R", hp, hp.fro_mp(M0_data @ hp.AR - hp.R),
         m0_fro * hp.f64(sv_ar[0]) + hp.fro(hp.R))
    _rel(ev, "D1 X Y^+ P_perp = 0", hp, hp.fro_mp(M0_data @ hp.P_perp), m0_fro)
    inv_s_ar = 1 / sv_ar[s - 1]
    _rel(ev, "D1 ||X Y^+||_2 = 1/sigma_s(A R)", hp,
         abs(mpo.spectral_norm(M0_data, ctx) - inv_s_ar), hp.f64(inv_s_ar))
    inv_s_y = 1 / sv_y[s - 1]
    _rel(ev, "D1 ||Y^+||_2 = 1/sigma_s(Y)", hp, abs(mpo.spectral_norm(Yp, ctx) - inv_s_y),
         hp.f64(inv_s_y))
    lo, hi = sv_ar[s - 1] * sv_z[s - 1], sv_y[s - 1]
    ev.compare("D1 sigma_s(A R) sigma_s(Z) <= sigma_s(Y)", hp.f64(lo), hp.f64(hi),
               REL * hp.f64(lo + hi))
    lo, hi = sv_y[0], sv_ar[0] * sv_z[0]
    ev.compare("D1 sigma_1(Y) <= sigma_1(A R) sigma_1(Z)", hp.f64(lo), hp.f64(hi),
               REL * hp.f64(lo + hi))
    return {"M0": M0, "Yp": Yp, "sv_ar": sv_ar, "sv_y": sv_y}


def _check_d9(ev: Evidence, hp: _MP, d1: dict) -> dict:
    ctx, s = hp.ctx, hp.spec.s
    sv = d1["sv_ar"]
    delta2 = max(sv[0] ** 2 - 1, 1 - sv[s - 1] ** 2)
    delta1 = max(sv[0] - 1, 1 - sv[s - 1])
    rng = hp.inst.test_rng()
    probes = mpo.lift(rng.standard_normal((s, N_RIP_PROBES)), ctx, "z")
    images = hp.AR @ probes
    ratios = [mpo.fro_norm(images[:, j], ctx) ** 2 / mpo.fro_norm(probes[:, j], ctx) ** 2
              for j in range(N_RIP_PROBES)]
    top, bottom = max(ratios), min(ratios)
    # Inequalities at 50 digits: the allowance is the class-H relative residual.
    ev.compare("D9 ||A R z||^2 <= (1 + delta_2) ||z||^2 (random z)", hp.f64(top),
               hp.f64(1 + delta2), REL * hp.f64(1 + delta2))
    ev.compare("D9 (1 - delta_2) ||z||^2 <= ||A R z||^2 (random z)", hp.f64(1 - delta2),
               hp.f64(bottom), REL * hp.f64(1 + delta2))
    ev.compare("D9 ||A R z|| <= (1 + delta_1) ||z|| (random z)", hp.f64(ctx.sqrt(top)),
               hp.f64(1 + delta1), REL * hp.f64(1 + delta1))
    ev.compare("D9 (1 - delta_1) ||z|| <= ||A R z|| (random z)", hp.f64(1 - delta1),
               hp.f64(ctx.sqrt(bottom)), REL * hp.f64(1 + delta1))
    _U, _S, Vt = mpo.svd(hp.AR, ctx)
    top_v = mpo.fro_norm(hp.AR @ Vt[0], ctx) ** 2
    bottom_v = mpo.fro_norm(hp.AR @ Vt[s - 1], ctx) ** 2
    # Sharpness: delta_2 is attained exactly at the extreme right singular vectors.
    _rel(ev, "D9 delta_2 attained at right singular vectors", hp,
         abs(max(top_v - 1, 1 - bottom_v) - delta2), hp.f64(1 + delta2))
    _rel(ev, "D9 helper oracle.rip_delta = literal definition", hp,
         abs(mpo.rip_delta(hp.A, hp.R, ctx, 2) - delta2), hp.f64(1 + delta2))
    return {"delta2": delta2, "delta1": delta1}


def _check_d0(ev: Evidence, hp: _MP, traj_full: list) -> None:
    ctx, s, spec = hp.ctx, hp.spec.s, hp.spec
    V = mpo.svd(hp.Z, ctx)[2][:s].T  # row(X) = row(Y) = row(Z) = range(V), exactly in mp
    Xr, Yr = hp.X @ V, hp.Y @ V
    W = hp.W0
    kw = {"lam": hp.lam, "a": hp.a, "c": hp.c}
    M = dl.end_to_end(W)
    fit_scale = hp.fro(M @ hp.Y) + hp.fro(hp.X)
    pen = sum(hp.fro(w) ** 2 for w in W)
    loss_scale = hp.f64(hp.a) * fit_scale**2 + hp.f64(hp.c * hp.lam) * pen
    _rel(ev, "D0 loss", hp, abs(dl.objective(W, hp.X, hp.Y, **kw) - dl.objective(W, Xr, Yr, **kw)),
         loss_scale)
    g_full = dl.gradient(W, hp.X, hp.Y, **kw)
    g_red = dl.gradient(W, Xr, Yr, **kw)
    Wf = [mpo.to_float64_array(w, ctx) for w in W]
    y2 = hp.spec2(hp.Y)
    for ell, (Gf, Gr) in enumerate(zip(g_full, g_red, strict=True)):
        head = float(np.linalg.norm(dl.end_to_end(Wf, ell + 1), 2)) if ell + 1 < len(W) else 1.0
        tail = float(np.linalg.norm(dl.end_to_end(Wf[:ell]), 2)) if ell else 1.0
        scale = hp.f64(hp.a) * head * tail * fit_scale * y2 + hp.f64(hp.lam_bar) * hp.fro(W[ell])
        _rel(ev, f"D0 gradient layer {ell + 1}", hp, hp.fro_mp(Gf - Gr), scale, layer=ell + 1)
    Yrp = mpo.pinv(Yr, ctx, s)
    _rel(ev, "D0 P_perp(Y V) = P_perp(Y)", hp,
         hp.fro_mp((mpo.identity(spec.m, ctx) - Yr @ Yrp) - hp.P_perp), 1.0)
    M0 = hp.X @ mpo.pinv(hp.Y, ctx, s)
    _rel(ev, "D0 oracle (X V)(Y V)^+ = X Y^+", hp, hp.fro_mp(Xr @ Yrp - M0), hp.fro(M0))
    traj_red = mpo.run_steps(dl.gd_step, W, {"X": Xr, "Y": Yr, **hp.step_kw}, spec.steps)
    # Rounding enters each step at ~u ||W|| and the stable GD map carries it forward at most
    # linearly, hence (steps + 1) sum_l ||W_l|| (the class-U trajectory scale).
    last_full, last_red = traj_full[-1], traj_red[-1]
    scale = (spec.steps + 1) * max(sum(hp.fro(w) for w in last_full),
                                   sum(hp.fro(w) for w in last_red))
    resid = max(hp.fro_mp(a - b) for a, b in zip(last_full, last_red, strict=True))
    _rel(ev, "D0 GD trajectory (X, Y) vs (X V, Y V)", hp, resid, scale, iteration=spec.steps)


def _check_d2_d3(ev: Evidence, hp: _MP, traj: list) -> None:
    ctx, spec = hp.ctx, hp.spec
    dims = [spec.m] + [w.shape[0] for w in hp.W0]
    rhos, gammas = dl.layer_coefficients(dims, hp.eta, hp.lam_bar, hp.a, spec.update)
    rho1, gamma1 = rhos[0], gammas[0]
    W1P0 = hp.W0[0] @ hp.P_perp
    y_fro = hp.fro(hp.Y)
    check_d3 = spec.update == "standard" and spec.L > 1
    S_t = 0.0
    worst_d2: list = [None, None]
    worst_d3 = None
    prev = None  # (D_l(t), G_l(t), ||W_l(t)||_F) of the previous step, for D3
    for t, ws in enumerate(traj):
        _, G, B1 = dl.forward_backward(ws, hp.X, hp.Y)
        w_fro = [hp.fro(w) for w in ws]
        rt = rho1**t
        r1 = hp.fro(ws[0] @ hp.P_perp - rt * W1P0)
        s1 = S_t + w_fro[0]
        tail = dl.end_to_end(ws, 1) if len(ws) > 1 else mpo.identity(spec.d, ctx)
        MP = (tail @ ws[0]) @ hp.P_perp
        r2 = hp.fro(MP - rt * (tail @ W1P0))
        s2 = hp.spec2(tail) * s1 + hp.fro(MP)
        for i, (r, sc) in enumerate(((r1, s1), (r2, s2))):
            if worst_d2[i] is None or r / sc > worst_d2[i][0] / worst_d2[i][1]:
                worst_d2[i] = (r, sc, t)
        # The D2 rounding scale of the spec (class U): sum_j rho^(t-1-j) (||W_1|| + g ||B_1|| ||Y||).
        S_t = hp.f64(rho1) * S_t + w_fro[0] + hp.f64(gamma1) * hp.fro(B1) * y_fro
        if not check_d3:
            continue
        D = [ws[ell + 1].T @ ws[ell + 1] - ws[ell] @ ws[ell].T for ell in range(len(ws) - 1)]
        if prev is not None:
            D_prev, G_prev, w_prev = prev
            rho2, gamma2 = rhos[0] ** 2, gammas[0] ** 2
            for ell in range(len(ws) - 1):
                pred = D_prev[ell] * rho2 + (G_prev[ell + 1].T @ G_prev[ell + 1]
                                             - G_prev[ell] @ G_prev[ell].T) * gamma2
                sc = (w_fro[ell + 1] ** 2 + w_fro[ell] ** 2
                      + hp.f64(rho2) * (w_prev[ell + 1] ** 2 + w_prev[ell] ** 2)
                      + hp.f64(gamma2) * (hp.fro(G_prev[ell + 1]) ** 2 + hp.fro(G_prev[ell]) ** 2))
                r = hp.fro(D[ell] - pred)
                if worst_d3 is None or r / sc > worst_d3[0] / worst_d3[1]:
                    worst_d3 = (r, sc, t - 1, ell + 1)
        prev = (D, G, w_fro)
    for label, (r, sc, t) in zip(("D2 W_1(t) P_perp = rho_1^t W_1(0) P_perp",
                                  "D2 W_{L:1}(t) P_perp = rho_1^t W_{L:2}(t) W_1(0) P_perp"),
                                 worst_d2, strict=True):
        ev.compare(label, r, REL * sc, iteration=t)
    if worst_d3 is not None:
        r, sc, t, ell = worst_d3
        ev.compare("D3 D_l(t+1) = rho^2 D_l(t) + gamma^2 (G_{l+1}^T G_{l+1} - G_l G_l^T)", r,
                   REL * sc, iteration=t, layer=ell)
    ev.metrics["d3_checked"] = worst_d3 is not None


def _check_d6(ev: Evidence, hp: _MP, points: list) -> None:
    kw = {"lam": hp.lam, "a": hp.a, "c": hp.c}
    lb = hp.lam_bar
    for label, ws in points:
        nab = dl.gradient(ws, hp.X, hp.Y, **kw)
        lhs = lb * (ws[0] @ hp.P_perp)
        rhs = nab[0] @ hp.P_perp
        scale = hp.fro(nab[0] - lb * ws[0]) + hp.f64(lb) * hp.fro(ws[0])
        _rel(ev, f"D6-i lam_bar W_1 P_perp = nabla_1 P_perp ({label})", hp, hp.fro_mp(lhs - rhs),
             scale)
        for ell in range(len(ws) - 1):
            D = ws[ell + 1].T @ ws[ell + 1] - ws[ell] @ ws[ell].T
            rhs = ws[ell + 1].T @ nab[ell + 1] - nab[ell] @ ws[ell].T
            scale = (hp.fro(ws[ell + 1]) * hp.fro(nab[ell + 1]) + hp.fro(nab[ell]) * hp.fro(ws[ell])
                     + hp.f64(lb) * (hp.fro(ws[ell + 1]) ** 2 + hp.fro(ws[ell]) ** 2))
            _rel(ev, f"D6-ii lam_bar D_{ell + 1} = W^T nabla - nabla W^T ({label})", hp,
                 hp.fro_mp(lb * D - rhs), scale, layer=ell + 1)


def _check_gradient_fd(ev: Evidence, hp: _MP, n_directions: int = 2) -> None:
    ctx = hp.ctx
    kw = {"lam": hp.lam, "a": hp.a, "c": hp.c}
    W = hp.W0
    grads = dl.gradient(W, hp.X, hp.Y, **kw)
    g_norm = hp.fro(np.concatenate([g.ravel() for g in grads]))
    h = ctx.mpf(FD_STEP)
    rng = hp.inst.test_rng()
    for j in range(n_directions):
        D = [mpo.lift(rng.standard_normal(w.shape), ctx, "D") for w in W]
        norm = ctx.sqrt(ctx.fsum(mpo.fro_norm(d, ctx) ** 2 for d in D))
        D = [d / norm for d in D]
        fp = dl.objective([w + h * d for w, d in zip(W, D, strict=True)], hp.X, hp.Y, **kw)
        fm = dl.objective([w - h * d for w, d in zip(W, D, strict=True)], hp.X, hp.Y, **kw)
        an = ctx.fsum(ctx.fsum(v for v in (g * d).ravel()) for g, d in zip(grads, D, strict=True))
        # Class F at 50 digits: the truncation error is h^2 F''' / 6 ~ 1e-40 and the rounding
        # error ~ k 2^-169 |F| / h ~ 1e-31 k |F|; relative to ||nabla F|| (D has unit norm).
        # The spec's 1e-30 is within a factor ~10 of that rounding floor when |F| > ||nabla F||,
        # so the floor is reported to tell a rounding-limited failure from a wrong gradient.
        ev.compare(f"gradient: central difference at h=1e-20, direction {j}",
                   hp.f64(abs((fp - fm) / (2 * h) - an)), FD_REL * g_norm)
        floor = hp.f64(ctx.eps * (abs(fp) + abs(fm)) / (2 * h)) / g_norm
        ev.metrics["fd_rounding_floor_relative"] = max(
            ev.metrics.get("fd_rounding_floor_relative", 0.0), floor)


def _check_float64(ev: Evidence, hp: _MP, d1: dict, d9: dict) -> None:
    ctx, spec, inst = hp.ctx, hp.spec, hp.inst
    data = inst.data
    dim = max(spec.d, spec.m, spec.d_w, spec.n)
    # (a) Pure rounding drift of the same gd_step on the same (lifted) float64 inputs.
    rep = mpo.replay(dl.gd_step, inst.weights0,
                     {"X": data.X, "Y": data.Y, "eta": inst.eta, "lam": spec.lam, "a": inst.a,
                      "c": inst.c, "update": spec.update}, spec.steps, ctx)
    drift = rep.drift()
    worst = None
    for t, ws in enumerate(rep.float64):
        # Each float64 step commits ~u (||W|| + gamma ||G||) <= u sum_l ||W_l|| (stable steps) and
        # the GD map carries earlier errors forward at most linearly: 64 u (t + 1) sum_l ||W_l||.
        bound = tol.update_path((t + 1) * sum(float(np.linalg.norm(w)) for w in ws), dim)
        if worst is None or drift[t] / bound > worst[0] / worst[1]:
            worst = (float(drift[t]), bound, t)
    ev.compare("float64 vs mp: GD iterates (same gd_step, class U)", worst[0], worst[1],
               iteration=worst[2])
    ev.metrics["replay_final_drift"] = float(drift[-1])
    # (b) Gradient at W(0) on the same inputs (class U with the D0 gradient scale).
    Wf = inst.weights0
    kw = {"lam": spec.lam, "a": inst.a, "c": inst.c}
    g64 = dl.gradient(Wf, data.X, data.Y, **kw)
    ghp = dl.gradient([mpo.lift(w, ctx) for w in Wf], mpo.lift(data.X, ctx), mpo.lift(data.Y, ctx),
                      **{k: ctx.mpf(float(v)) for k, v in kw.items()})
    M = dl.end_to_end(Wf)
    fit = float(np.linalg.norm(M @ data.Y) + np.linalg.norm(data.X))
    for ell, (gl, gh) in enumerate(zip(g64, ghp, strict=True)):
        head = float(np.linalg.norm(dl.end_to_end(Wf, ell + 1), 2)) if ell + 1 < len(Wf) else 1.0
        tail = float(np.linalg.norm(dl.end_to_end(Wf[:ell]), 2)) if ell else 1.0
        scale = (inst.a * head * tail * fit * float(np.linalg.norm(data.Y, 2))
                 + inst.lam_bar * float(np.linalg.norm(Wf[ell])))
        ev.compare(f"float64 vs mp: gradient layer {ell + 1} (class U)",
                   hp.fro(mpo.lift(gl, ctx) - gh), tol.update_path(scale, dim), layer=ell + 1)
    # (c)-(f) Pseudo-inverse quantities of the float64 instance against the exact mp instance:
    # class P, 1024 u kappa S with the condition number of the matrix that is pseudo-inverted.
    sv_ar = [hp.f64(v) for v in d1["sv_ar"]]
    kappa_ar = sv_ar[0] / sv_ar[spec.s - 1]
    kappa_y = hp.f64(d1["sv_y"][0] / d1["sv_y"][spec.s - 1])
    M0_mp = d1["M0"]
    m0_norm = hp.spec2(M0_mp)
    ev.compare("float64 vs mp: oracle R (A R)^+ (class P)",
               hp.fro(mpo.lift(dlb.oracle(data.A, data.R), ctx) - M0_mp),
               tol.pseudo_inverse(m0_norm, kappa_ar, dim))
    # The data oracle X Y^+ has the analogous scale ||X||_2 ||Y^+||_2 (<= kappa(Z) ||M_0||_2).
    ev.compare("float64 vs mp: data oracle X Y^+ (class P)",
               hp.fro(mpo.lift(dl.data_oracle(data.X, data.Y, spec.s), ctx) - M0_mp),
               tol.pseudo_inverse(float(np.linalg.norm(data.X, 2)) * hp.spec2(d1["Yp"]), kappa_y,
                                  dim))
    # sin-theta: a projector moves by ~ ||dB|| / sigma_s(B) = u kappa for a relative dB ~ u.
    ev.compare("float64 vs mp: P_perp (class P)",
               hp.fro(mpo.lift(dlb.projectors(data.A, data.R)[1], ctx) - hp.P_perp),
               tol.pseudo_inverse(1.0, kappa_ar, dim))
    a_norm = float(np.linalg.norm(data.A, 2))
    for power, key in ((2, "delta2"), (1, "delta1")):
        # A backward-stable SVD moves sigma by ~u ||A||; sigma^2 then moves by 2 sigma_1 of that.
        scale = (2 * sv_ar[0] if power == 2 else 1.0) * a_norm
        ev.compare(f"float64 vs mp: rip_delta(power={power}) (class P)",
                   hp.f64(abs(ctx.mpf(dlb.rip_delta(data.A, data.R, power)) - d9[key])),
                   tol.pseudo_inverse(scale, 1.0, dim))
    if spec.design == "prescribed_rip":
        # The design is built in float64 with A R = Q D up to the rounding of forming A.
        ev.compare("prescribed-RIP design: exact delta_2 = rip_delta (class P)",
                   hp.f64(abs(d9["delta2"] - ctx.mpf(spec.rip_delta))),
                   tol.pseudo_inverse(2 * sv_ar[0] * a_norm, 1.0, dim))


@claim("dln.high_precision_identities", provenance="[derived]", kind=Kind.IDENTITY,
       statement="D0, D1, D2, D3, D6-i/ii and D9 hold at 50 digits (residual <= 1e-40 relative); "
                 "float64 agrees with mpmath within class U/P",
       hypotheses=[TINY_SIZES],
       instances={"quick": [_TINY,
                            _TINY.replace(d=5, L=2, d_w=3, lam=0.3, convention="mean",
                                          design="prescribed_rip", seed=1)],
                  "paper": [_TINY,
                            _TINY.replace(d=5, L=2, d_w=3, lam=0.3, convention="mean",
                                          design="prescribed_rip", seed=1),
                            _TINY.replace(L=1, lam=0.05, seed=2),
                            _TINY.replace(update="seed002_ntk", stepsize="seed002",
                                          convention="pytorch_wd", seed=3),
                            _TINY.replace(init="torch_default", z_log10_cond=2.0, d_w=2, seed=4),
                            _TINY.replace(design="isotropic", k=0.5, lam=0.0, seed=5),
                            _TINY.replace(s=1, m=3, n=2, init="kaiming_normal_relu", seed=6)]},
       reference=f"{REF}#11-test-methodology")
def high_precision_identities(spec: DLNSpec) -> Evidence:
    # The rounding bounds of the float64 comparison presuppose a stable step; a run that
    # diverges in float64 fails the hypothesis `stable_run` (the instance is vacuous).
    trajectory(spec)
    hp = _MP(spec)
    ev = Evidence(metrics={"dps": DPS, "class_h_relative": REL})
    d1 = _check_d1(ev, hp)
    d9 = _check_d9(ev, hp, d1)
    traj = mpo.run_steps(dl.gd_step, hp.W0, {"X": hp.X, "Y": hp.Y, **hp.step_kw}, spec.steps)
    _check_d0(ev, hp, traj)
    _check_d2_d3(ev, hp, traj)
    rng = hp.inst.test_rng()
    random_ws = [mpo.lift(rng.standard_normal(w.shape) / np.sqrt(w.shape[1]), hp.ctx)
                 for w in hp.inst.weights0]
    _check_d6(ev, hp, [("random W", random_ws), ("W(0)", hp.W0),
                       (f"GD iterate t={spec.steps}", traj[-1])])
    _check_gradient_fd(ev, hp)
    _check_float64(ev, hp, d1, d9)
    # Identity residuals at 50 digits (inequalities carry an allowance; float64 checks another
    # tolerance class): the worst residual relative to its scale.
    mp_checks = [c for c in ev.comparisons if c.allowance == 0
                 and not c.label.startswith(("float64", "prescribed", "gradient"))]
    ev.metrics["worst_mp_relative_residual"] = max(
        (c.observed / c.bound * REL for c in mp_checks if c.bound > 0), default=0.0)
    ev.metrics["delta2"] = hp.f64(d9["delta2"])
    return ev

