"""``make bench``: training throughput and peak memory of the paper's MNIST G against its MLP F.

Each setting runs in a fresh process (so its peak resident memory is its own) and times full
training steps at batch 64: G forward, F on x and G(x), the MSE + threshold loss, backward, Adam.
Prints a table and writes ``bench_out/bench.json``. Settings: float32; bfloat16 autocast;
bfloat16 autocast with channels-last memory format.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from distortion.losses import mse_distance
from distortion.models import MLPEmbedding, UNet
from distortion.modules.distortion import distortion_loss_terms

SETTINGS = ("fp32", "bf16", "bf16_channels_last")


def measure(setting: str, batch: int = 64, steps: int = 30, warmup: int = 5) -> dict[str, float]:
    """Images per second of G training steps under ``setting``, and this process's peak RSS in MiB."""
    torch.manual_seed(0)
    generator = UNet(in_channels=1, depth=3, width=64, channels_last=setting.endswith("channels_last"))
    embedding = MLPEmbedding((1, 28, 28), hidden=2048, dim=10).eval().requires_grad_(False)
    x = torch.rand(batch, 1, 28, 28)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.startswith("bf16"))

    def step() -> None:
        with autocast:
            loss = distortion_loss_terms(generator, embedding, mse_distance, x, 1.0, 10.0, 0.02)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"setting": setting, "images_per_s": batch * steps / seconds, "peak_rss_mib": peak_mib,
            "threads": torch.get_num_threads()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", choices=SETTINGS, help="measure one setting in this process (internal)")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, steps=args.steps)))
        return
    rows = []
    for setting in SETTINGS:
        cmd = [sys.executable, "-m", "distortion.bench", "--one", setting, "--steps", str(args.steps)]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    print("G training throughput, paper's MNIST U-Net (64-128-256) + MLP F (784-2048-10), batch 64")
    print(f"{'setting':<22}{'images/s':>10}{'peak RSS MiB':>14}")
    for row in rows:
        print(f"{row['setting']:<22}{row['images_per_s']:>10.1f}{row['peak_rss_mib']:>14.0f}")
    out = Path("bench_out")
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
