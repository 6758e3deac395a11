"""Where a command runs and how long it took: the device, networks placed on it, and a timer for reports."""

from __future__ import annotations

import time

import torch
from torch import nn

__all__ = ["Timer", "place", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: the first GPU when torch sees one, else the CPU; a named device is checked to exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but torch sees no GPU here; use auto or cpu")
    return resolved


def place(device: torch.device, *models: nn.Module | None) -> None:
    """Move every given network to ``device`` in eval mode, without gradients (``None`` entries are skipped)."""
    for model in models:
        if model is not None:
            model.to(device).eval().requires_grad_(False)


class Timer:
    """Wall time and throughput of a command's main loop on its device, for its report."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.start = time.perf_counter()

    def section(self, images: int) -> dict[str, float | int | str]:
        """``{device, seconds, images, images_per_s[, cuda_peak_memory_mib]}`` since the timer started."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - self.start
        section: dict[str, float | int | str] = {"device": str(self.device), "seconds": seconds, "images": images,
                                                 "images_per_s": images / max(seconds, 1e-9)}  # fmt: skip
        if self.device.type == "cuda":
            section["cuda_peak_memory_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            section["gpu"] = torch.cuda.get_device_name(self.device)
        return section
