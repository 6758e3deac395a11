"""F's budget as a constraint: a Lagrange multiplier that grows while G breaks the budget and shrinks
while G keeps it (GECO, Rezende and Viola 2018, "Taming VAEs").

The paper's penalty ``beta * mean(relu(||F(x) - F(G(x))||^2 - tau))`` has a fixed weight: whenever the
image term's gradient is stronger than F's (a saturating sigmoid, a flat region of F), G trades the
identity away and may never come back. With the multiplier, the weight of the same hinge term rises
exponentially for as long as the budget is broken, so the image term can only win where F is kept.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["LagrangeMultiplier"]


class LagrangeMultiplier(nn.Module):
    """A multiplier ``lambda`` for the constraint ``violation <= tolerance``, with the multiplicative dual
    update of GECO on a moving average of the constraint:

        c_ma <- smoothing * c_ma + (1 - smoothing) * clamp(violation - tolerance, -1, 1)
        lambda <- clamp(lambda * exp(rate * c_ma), min_value, max_value)

    The clamp keeps one wild batch (a G far from F at the start) from multiplying ``lambda`` by orders
    of magnitude in a step: it changes by at most a factor ``exp(rate)`` per step.

    ``violation`` is the mean hinge relative to the budget, ``mean(relu(d^2 - tau)) / tau``: 0 when every
    image keeps its embedding within the budget. ``lambda`` and ``c_ma`` are buffers, so checkpoints
    carry them and a resumed run continues with the same weight.

    Args:
        init: the starting value of ``lambda`` (the paper's ``beta``).
        rate: how fast ``lambda`` moves (per training step, in units of the averaged constraint).
        tolerance: the mean relative excess allowed.
        smoothing: weight of the past in the moving average.
        min_value, max_value: bounds of ``lambda``.
    """

    def __init__(
        self,
        init: float = 1.0,
        rate: float = 0.1,
        tolerance: float = 0.02,
        smoothing: float = 0.9,
        min_value: float = 1e-2,
        max_value: float = 1e5,
    ) -> None:
        super().__init__()
        if not (0 < min_value <= init <= max_value and rate > 0 and tolerance >= 0 and 0 <= smoothing < 1):
            raise ValueError(
                f"need 0 < min_value <= init <= max_value, rate > 0, tolerance >= 0 and 0 <= smoothing < 1; "
                f"got init={init}, rate={rate}, tolerance={tolerance}, smoothing={smoothing}, "
                f"bounds=({min_value}, {max_value})"
            )
        self.rate, self.tolerance, self.smoothing = rate, tolerance, smoothing
        self.log_bounds = (math.log(min_value), math.log(max_value))
        self.register_buffer("value", torch.tensor(float(init)))
        self.register_buffer("average", torch.tensor(0.0))

    @torch.no_grad()
    def update(self, violation: Tensor) -> None:
        """One dual step after a training step that measured ``violation`` (a scalar, detached)."""
        signal = (violation.float() - self.tolerance).clamp(-1.0, 1.0)
        self.average.mul_(self.smoothing).add_((1 - self.smoothing) * signal)
        log_value = (self.value.log() + self.rate * self.average).clamp(*self.log_bounds)
        self.value.copy_(log_value.exp())
