"""Which floating-point precision a device computes fastest: bfloat16 where it is native, float32 elsewhere.

bfloat16 autocast is fast only where the hardware computes it: a GPU of compute capability 8.0 or newer, or
a CPU with AVX-512 BF16 or AMX. On any other CPU (AVX2 only, most laptops) PyTorch emulates it, and a
training step runs about 10x slower than in float32 (docs/speed.md). Every run, inside Lightning (the
trainer's ``precision``) and outside it (refinement, the store, the benchmark), asks :func:`native_bfloat16`
unless the user chose.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch

__all__ = [
    "CPU_BF16_FLAGS",
    "Precision",
    "autocast",
    "cpu_flags",
    "native_bfloat16",
    "resolve_autocast",
    "trainer_precision",
]

# /proc/cpuinfo flags (x86 and aarch64 spellings) of a CPU that computes bfloat16 in hardware
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
Precision = Literal["auto", "bf16", "32"]


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as the kernel lists them (``flags`` on x86, ``Features`` on aarch64); empty
    where the file does not exist (macOS, Windows)."""
    path = Path(cpuinfo)
    if not path.is_file():
        return frozenset()
    for line in path.read_text(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def native_bfloat16(device: str | torch.device = "cpu", flags: Iterable[str] | None = None) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it without emulation, or a
    CPU whose ``flags`` (default: :func:`cpu_flags`) include one of :data:`CPU_BF16_FLAGS`, unless oneDNN is
    capped below them (``ONEDNN_MAX_CPU_ISA=AVX2``, say; PyTorch's CPU convolutions then emulate bfloat16). Apple
    silicon reports BF16 through ``sysctl``, as macOS has no ``/proc/cpuinfo``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    if flags is None and _onednn_capped():  # this process's oneDNN, not a CPU described by its flags
        return False
    found = frozenset(cpu_flags() if flags is None else flags)
    if found & CPU_BF16_FLAGS:
        return True
    return flags is None and platform.system() == "Darwin" and platform.machine() == "arm64" and _apple_bf16()


def _onednn_capped() -> bool:
    """Whether ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``) keeps oneDNN off bfloat16 hardware."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    return bool(cap) and cap not in ("ALL", "DEFAULT") and not any(s in cap for s in ("BF16", "AMX", "AVX10"))


def _apple_bf16() -> bool:
    import subprocess

    try:
        out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "1"


def trainer_precision(accelerator: str = "auto", flags: Iterable[str] | None = None) -> str:
    """Lightning's ``precision`` for a trainer on ``accelerator``: ``bf16-mixed`` where that device computes
    bfloat16 natively, else ``32-true``."""
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if native_bfloat16("cuda" if gpu else "cpu", flags) else "32-true"


def resolve_autocast(device: str | torch.device, precision: Precision = "auto") -> bool:
    """Whether to run under bfloat16 autocast on ``device``: ``bf16`` yes, ``32`` no, ``auto`` where native."""
    if precision not in ("auto", "bf16", "32"):
        raise ValueError(f"precision must be auto, bf16 or 32, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and native_bfloat16(device))


def autocast(device: str | torch.device, precision: Precision = "auto") -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` where :func:`resolve_autocast` says so, else a context that does nothing."""
    device = torch.device(device)
    if not resolve_autocast(device, precision):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
