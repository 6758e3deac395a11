"""The precision rule: bfloat16 where the device computes it natively, float32 elsewhere; a user's choice wins."""

from __future__ import annotations

import pytest
import torch

from distortion.deployment.enrolment import Enrolment
from distortion.deployment.refinement import refine
from distortion.precision import autocast, cpu_flags, native_bfloat16, resolve_autocast, trainer_precision

AVX2_ONLY = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma bmi2 avx512f avx512bw".split()  # AVX-512 without BF16
SAPPHIRE = AVX2_ONLY + ["avx512_bf16", "amx_bf16", "amx_tile"]
NEOVERSE_V1 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp bf16 i8mm sve".split()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\nCPU implementer\t: 0x41\n")
    assert cpu_flags(x86) == {"fpu", "avx2", "fma"}
    assert cpu_flags(arm) == {"fp", "asimd", "bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(("flags", "native"), [(AVX2_ONLY, False), (SAPPHIRE, True), (NEOVERSE_V1, True), ([], False)])
def test_a_cpu_without_native_bfloat16_trains_in_float32(flags, native) -> None:
    assert native_bfloat16("cpu", flags) is native
    assert trainer_precision("cpu", flags) == ("bf16-mixed" if native else "32-true")


def test_this_machine_is_judged_by_its_own_flags(monkeypatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    expected = bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})
    assert native_bfloat16("cpu") is expected
    if not torch.cuda.is_available():
        assert trainer_precision("auto") == ("bf16-mixed" if expected else "32-true")


def test_an_explicit_precision_wins_over_the_hardware(monkeypatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert resolve_autocast("cpu", "bf16") is True
    assert resolve_autocast("cpu", "32") is False
    assert resolve_autocast("cpu", "auto") is native_bfloat16("cpu")
    with autocast("cpu", "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast("cpu", "32"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="precision must be auto, bf16 or 32, got 'fp16'"):
        resolve_autocast("cpu", "fp16")
    with pytest.raises(ValueError, match="precision must be auto, bf16 or 32"):
        Enrolment(refine_steps=1, refine_precision="half")


def test_refinement_follows_the_precision_it_is_given() -> None:
    """F sees bfloat16 activations under ``bf16`` and float32 under ``32``."""
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x):
            out = self.linear(x.flatten(1))
            seen.append(out.dtype)
            return out

    images, target = torch.rand(2, 1, 2, 2), torch.zeros(2, 2)
    for precision, dtype in (("bf16", torch.bfloat16), ("32", torch.float32)):
        seen.clear()
        refine(images, Probe(), target, steps=2, precision=precision)
        assert seen == [dtype, dtype]


def test_the_cli_chooses_precision_unless_told(tmp_path, monkeypatch) -> None:
    from distortion.lightning_cli import DistortionCLI
    from tests.conftest import ROOT

    monkeypatch.chdir(tmp_path)
    config = str(ROOT / "configs" / "mnist_embedding_mlp.yaml")
    chosen = DistortionCLI(run=False, args=["--config", config])
    assert str(chosen.trainer.precision) == trainer_precision()
    for explicit in ("32-true", "bf16-mixed"):
        told = DistortionCLI(run=False, args=["--config", config, "--trainer.precision", explicit])
        assert str(told.trainer.precision) == explicit


@pytest.mark.parametrize(("cap", "native"), [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                                             ("AVX512_CORE_AMX", True), ("ALL", True)])  # fmt: skip
def test_a_onednn_cap_below_bfloat16_counts_as_emulated(cap, native, monkeypatch) -> None:
    """This process's CPU (its flags those of a Sapphire Rapids here) with oneDNN capped by the environment."""
    monkeypatch.setattr("distortion.precision.cpu_flags", lambda: frozenset(SAPPHIRE))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert native_bfloat16("cpu") is native
    assert native_bfloat16("cpu", SAPPHIRE) is True  # a CPU described by its flags is judged by them alone
