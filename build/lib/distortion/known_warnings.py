"""Notices of the libraries underneath that nobody running this project can act on, silenced in one place.

Each entry says why it is harmless here; every other warning stays visible. :func:`silence_known_warnings`
runs once when the ``distortion`` command starts.
"""

from __future__ import annotations

import warnings

__all__ = ["KNOWN_WARNINGS", "silence_known_warnings"]

# (a regular expression the message starts with, why it is harmless here)
KNOWN_WARNINGS = (
    (r"Found \d+ module\(s\) in eval mode at the start of training",
     "F and the perceptual network P are frozen on purpose: eval mode, no gradients"),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated",
     "raised inside Lightning's own utilities by this torch release; nothing in this project calls it"),
    (r"Precision bf16-mixed is not supported by the model summary",
     "the summary's size estimate assumes 32 bits; training runs in bf16 as configured"),
)  # fmt: skip


def silence_known_warnings() -> None:
    """Ignore the :data:`KNOWN_WARNINGS` (and only those)."""
    for pattern, _ in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
