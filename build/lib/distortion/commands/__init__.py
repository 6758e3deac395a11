"""The functions behind ``distortion <command>``, one module per command, named after it.

``distortion fit | validate | test | predict`` are LightningCLI's (:mod:`distortion.lightning_cli`);
the others are plain functions whose signatures jsonargparse turns into flags and ``--help``.
"""
