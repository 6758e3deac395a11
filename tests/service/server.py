"""The service for tests: a real ``distortion serve`` process over the tiny keyed model, and tenants made through
the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from distortion.service.process import ServiceProcess
from tests.conftest import REFINE_STEPS

THRESHOLD = "0.75"
"""The tests' stores' threshold: the tiny keyed model's own, calibrated on its 12 training images (0.668), admits
impostors of these people (their scores reach 0.74, genuine ones start at 0.79)."""


def create_tenant(root: Path, name: str, *extra: str) -> str:
    """Make tenant ``name`` through the command line (``extra`` flags of ``create`` appended); its API key, as
    printed once."""
    command = [sys.executable, "-m", "distortion", "tenant", "--root", str(root), "create", "--name", name, *extra]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["api_key"]


class Server(ServiceProcess):
    """``distortion serve`` over ``root`` with the tiny keyed model on the CPU; ``extra`` flags appended."""

    def __init__(self, root: Path, keyed: Path, log: Path, *extra: str) -> None:
        flags = ["--model.embedding", "dlib", "--model.keyed", str(keyed), "--refine_steps", REFINE_STEPS,
                 "--device", "cpu", "--threshold", THRESHOLD, *extra]  # fmt: skip
        super().__init__(root, flags, log)
