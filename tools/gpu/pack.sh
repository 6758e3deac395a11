#!/usr/bin/env bash
# Pack what a lent GPU machine needs to run the project's own commands (it has torch, lightning and
# torchmetrics, but no jsonargparse or kornia, no data and no network; at most 64 MiB travel):
# the missing packages as wheels in .whl/, MNIST gzipped and the checkpoints the runs read (without
# optimizer state) in .gpu/. Run from the repository root after the MNIST runs it names; both folders
# are listed in .git/info/exclude.
set -euo pipefail
PIP="python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl"
$PIP jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 kornia==0.9.0 kornia_rs==0.2.0
mkdir -p .gpu/mnist
for f in "${DISTORTION_DATA:-../shared/data}"/MNIST/raw/*-ubyte; do gzip -c "$f" > ".gpu/mnist/$(basename "$f").gz"; done
.venv/bin/python - "$@" <<'PY'
import sys
from pathlib import Path

import torch

for ckpt in map(Path, sys.argv[1:]):
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    for key in ("optimizer_states", "lr_schedulers", "callbacks", "loops"):
        state.pop(key, None)
    target = Path(".gpu") / ckpt
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    print(target, target.stat().st_size // 2**20, "MiB")
PY
du -sh .whl .gpu
