"""Command line: ``distortion fit|validate|test|predict --config ...`` (LightningCLI), ``distortion sweep``,
the commands that are one function each: ``align``, ``evaluate-backbone``, ``evaluate`` (the report
of a G), ``distort``, ``privacy`` (attacks, unlinkability, a second recognizer), ``fit-transform`` and ``demo``,
the store's verbs, and the service (``serve``, ``tenant``)."""

from __future__ import annotations

import importlib
import sys

import jsonargparse
import torch

from distortion.known_warnings import silence_known_warnings

# The biometric store's verbs (distortion.commands.store), with positional photos.
STORE_COMMANDS = ("keygen", "enrol", "verify", "identify", "revoke", "list")

# Commands that are one function each; jsonargparse turns the signature into flags and --help.
FUNCTION_COMMANDS = {
    "align": "distortion.commands.align.align",
    "evaluate-backbone": "distortion.commands.evaluate_backbone.evaluate_backbone",
    "evaluate": "distortion.commands.evaluate.evaluate",
    "distort": "distortion.commands.distort.distort",
    "privacy": "distortion.commands.privacy.privacy",
    "fit-transform": "distortion.commands.fit_transform.fit_transform",
    "demo": "distortion.commands.demo.demo",
    "serve": "distortion.commands.serve.serve",
    "tenant": "distortion.commands.serve.Tenant",
}


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``distortion`` console script and of ``python -m distortion``."""
    argv = list(sys.argv[1:] if args is None else args)
    silence_known_warnings()
    torch.set_float32_matmul_precision("high")
    if argv[:1] == ["sweep"]:
        from distortion.commands.sweep import sweep_main

        sweep_main(argv[1:])
        return
    if argv[:1] and argv[0] in STORE_COMMANDS:
        from distortion.commands.store import store_main

        store_main(argv[0], argv[1:])
        return
    if argv[:1] and argv[0] in FUNCTION_COMMANDS:
        module, function = FUNCTION_COMMANDS[argv[0]].rsplit(".", 1)
        jsonargparse.CLI(getattr(importlib.import_module(module), function), args=argv[1:], as_positional=False)
        return
    from distortion.lightning_cli import DistortionCLI

    DistortionCLI(args=None if args is None else argv)
