"""What every generator G is: a network called as ``G(x, template)``, with ``template`` = F(x) (or the keyed
``T_k(F(x))``), returning images of x's shape in ``[0, 1]``.

One signature for all, so that the objective, the distorter and the benchmark never ask which kind of G
they hold. A generator that draws only from the template (a carrier) says so with ``reads_image = False``:
only such a G may serve a keyed store, whose image must carry ``T_k(F(x))`` and nothing of x.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

__all__ = ["Generator"]


class Generator(nn.Module):
    """Base class of G: subclasses implement :meth:`forward` and set :attr:`reads_image`."""

    reads_image: ClassVar[bool] = True

    def forward(self, x: Tensor, template: Tensor) -> Tensor:
        """``(B, C, H, W)`` originals in ``[0, 1]`` and their ``(B, D)`` templates -> ``(B, C, H, W)`` in ``[0, 1]``."""
        raise NotImplementedError
