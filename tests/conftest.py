"""Test configuration: Hypothesis profiles, loaded explicitly.

``HYPOTHESIS_PROFILE`` selects ``dev`` (local default), ``ci`` (default when ``CI`` is set;
derandomized, so CI sees the same examples every run) or ``thorough`` (scheduled runs). Hypothesis
registers and auto-loads its own ``ci`` profile when ``CI`` is set; registering ours under the same
name and loading it here makes the choice explicit.
"""

from __future__ import annotations

import os

# Pin BLAS threads before numpy loads (same reason as in verification/cli.py).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", max_examples=15, deadline=None)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
