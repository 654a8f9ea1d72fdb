"""Exceptions shared by the dynamics of every family."""

from __future__ import annotations


class DivergenceError(FloatingPointError):
    """Gradient descent diverged.

    Attributes
    ----------
    iteration : int
        The iteration at which divergence was detected.
    reason : str
        What was detected (non-finite residual, or fit error above the divergence factor).
    last_record : dict
        The last finite trajectory record before divergence (record name -> value).
    batch_indices : list of int
        The batch members that diverged.
    """

    def __init__(self, iteration: int, reason: str, last_record: dict, batch_indices: list[int]):
        self.iteration = iteration
        self.reason = reason
        self.last_record = last_record
        self.batch_indices = batch_indices
        super().__init__(f"gradient descent diverged at iteration {iteration}: {reason} "
                         f"(batch members {batch_indices})")
