"""``make bench``: throughput and peak memory of the pieces that bound a run's time on this machine.

Each case runs in a fresh process (so its peak resident memory is its own):

- ``mnist_g/*``: full training steps of the paper's MNIST G against its MLP F at batch 64
  (G forward, F on x and G(x), MSE + threshold loss, backward, Adam) in float32, bfloat16
  autocast, and bfloat16 with channels-last memory format;
- ``align/*``: face alignment of real LFW photos, one process (dlib: HOG detector, 5 landmarks,
  150 px chip; facenet: MTCNN, 160 px);
- ``dlib_resnet/*``: the face ResNet at batch 32 on real LFW chips: dlib's own
  ``compute_face_descriptor`` and our port, forward and forward + backward to the input (what
  training G through F costs);
- ``lfw_g/*``: the LFW config's G on 150 px chips: inference, and training steps through F;
- ``lfw_carrier/*``: the carrier G of ``configs/lfw_carrier.yaml`` at batch 32: distorting faces
  (F(x), then the decoder), and its training steps through F with the storage round trips;
- ``refine/*``: refinement from noise (no G) for 100 steps at batch 32 against dlib's ResNet and the
  paper's MNIST MLP: seconds and steps per image, and the squared embedding distance reached;
- ``lfw_keyed_carrier/*``: the keyed carrier (F, the whitened rotation under a key, the decoder) at batch 32;
- ``store/*``: enrolment, verification and 1:N identification at 10^4, 10^5 and 10^6 templates
  (:mod:`distortion.store.bench`).

Prints a table and writes ``bench_out/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from distortion.backbones import DlibResNet
from distortion.backbones.dlib_resnet import DLIB_RESNET_FILE, dlib_model_path
from distortion.deployment.distorter import Distorter
from distortion.deployment.keys import generate_key
from distortion.deployment.refinement import noise_images, refine
from distortion.faces.alignment import ALIGNERS
from distortion.models import CarrierGenerator, MLPEmbedding, UNet
from distortion.objective import Budget, ImageTerm, Objective
from distortion.objective.losses import squared_distance
from distortion.paths import lfw_root
from distortion.store.bench import lfw_keyed_transform, measure_enrol, measure_identify, measure_verify

MNIST_SETTINGS = ("fp32", "bf16", "bf16_channels_last", "residual_bf16_channels_last")
PORT_SETTINGS = ("fp32", "fp32_channels_last", "bf16_channels_last")


def _timed(fn, repeats: int, warmup: int = 2) -> float:
    """Seconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lfw_photos(count: int) -> list:
    from distortion.faces.alignment import read_rgb
    from distortion.faces.chip_cache import list_images

    return [read_rgb(p)[0] for p in list_images(lfw_root())[:count]]


def measure_alignment(aligner_name: str, count: int = 64) -> dict[str, float]:
    """Aligned photos per second in one process (detection, landmarks, chip)."""
    photos = _lfw_photos(count)
    aligner = ALIGNERS[aligner_name]()
    seconds = _timed(lambda: [aligner(p) for p in photos], repeats=1, warmup=0)
    return {"case": f"align/{aligner_name}", "images_per_s": count / seconds, "peak_rss_mib": _peak_rss_mib()}


def _lfw_chips(batch: int) -> np.ndarray:
    aligner = ALIGNERS["dlib"]()
    return np.stack([aligner(p).chip for p in _lfw_photos(batch)])


def measure_dlib_native(batch: int = 32, repeats: int = 3) -> dict[str, float]:
    """dlib's own ``compute_face_descriptor`` on a batch of chips."""
    import dlib

    chips = [np.ascontiguousarray(c) for c in _lfw_chips(batch)]
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path(DLIB_RESNET_FILE)))
    seconds = _timed(lambda: recognizer.compute_face_descriptor(chips), repeats)
    return {"case": "dlib_resnet/dlib_native", "images_per_s": batch / seconds, "peak_rss_mib": _peak_rss_mib()}


def measure_dlib_port(setting: str, batch: int = 32, repeats: int = 5) -> dict[str, float]:
    """Our port: forward (no grad) and forward + backward to the input, images per second."""
    chips = _lfw_chips(batch)
    model = DlibResNet().eval().requires_grad_(False)
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255
    if "channels_last" in setting:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.startswith("bf16"))

    def forward() -> None:
        with torch.no_grad(), autocast:
            model(x)

    def forward_backward() -> None:
        xg = x.clone().requires_grad_(True)
        with autocast:
            model(xg).float().square().sum().backward()

    return {
        "case": f"dlib_resnet/port_{setting}",
        "images_per_s": batch / _timed(forward, repeats),
        "train_images_per_s": batch / _timed(forward_backward, repeats),
        "peak_rss_mib": _peak_rss_mib(),
    }


def measure_face_generator(setting: str, batch: int = 16, repeats: int = 5) -> dict[str, float]:
    """The LFW config's G (residual U-Net, depth 4, width 16) on 150 px chips: inference images/s,
    and training steps through the frozen dlib ResNet (G, F twice, loss, backward, Adam)."""
    torch.manual_seed(0)
    channels_last = "channels_last" in setting
    generator = UNet(in_channels=3, depth=4, width=16, residual=True, channels_last=channels_last)
    embedding = DlibResNet().eval().requires_grad_(False)
    if channels_last:
        embedding = embedding.to(memory_format=torch.channels_last)
    x = torch.from_numpy(_lfw_chips(batch)).permute(0, 3, 1, 2).float() / 255
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.startswith("bf16"))
    objective = Objective(ImageTerm("coarse_decorrelation"), Budget(tau=0.04, beta=10.0))
    train = _generator_step(generator, embedding, objective, x, autocast)

    def infer() -> None:
        with torch.no_grad(), autocast:
            generator(x)

    return {
        "case": f"lfw_g/{setting}",
        "images_per_s": batch / _timed(infer, repeats),
        "train_images_per_s": batch / _timed(train, repeats),
        "peak_rss_mib": _peak_rss_mib(),
    }


def _generator_step(
    generator: nn.Module, embedding: nn.Module, objective: Objective, x: Tensor, autocast
) -> Callable[[], None]:
    """One training step of G under ``objective`` on the fixed batch ``x``, with its own Adam."""
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)

    def step() -> None:
        with autocast:
            loss = objective(generator, embedding, x, training=True)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure_carrier(setting: str, batch: int = 32, repeats: int = 5, keyed: bool = False) -> dict[str, float]:
    """The LFW carrier G: faces distorted per second (F(x) and the decoder), and its training steps; ``keyed``:
    the keyed carrier (F(x), the whitened rotation under a key, the decoder), as a store makes it."""
    torch.manual_seed(0)
    embedding = DlibResNet().eval().requires_grad_(False)
    generator = CarrierGenerator(128, (3, 150, 150), noise_dim=16, width=4, stages=0, upsample=2)  # the config's
    x = torch.from_numpy(_lfw_chips(batch)).permute(0, 3, 1, 2).float() / 255
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.startswith("bf16"))
    transform, key = lfw_keyed_transform().fit(torch.randn(256, 128) * 0.05), generate_key()
    distorter = Distorter(embedding, generator, transform=transform if keyed else None, key=key if keyed else None)
    objective = Objective(ImageTerm("decorrelation"), Budget(tau=0.02, beta=10.0, robust_storage=True))
    train = _generator_step(generator, embedding, objective, x, autocast)

    def infer() -> None:
        with torch.no_grad(), autocast:
            distorter(x)

    return {
        "case": f"lfw_{'keyed_' if keyed else ''}carrier/{setting}",
        "images_per_s": batch / _timed(infer, repeats),
        "train_images_per_s": batch / _timed(train, 3, warmup=1),
        "peak_rss_mib": _peak_rss_mib(),
    }


def measure_refinement(setting: str, batch: int = 32, steps: int = 100) -> dict[str, float]:
    """Refinement from noise: ``dlib_*`` on real LFW chips, ``mnist`` on test digits with the paper's MLP
    (random weights: the cost is the same); ``*_bf16`` runs F in bfloat16."""
    torch.manual_seed(0)
    if setting.startswith("dlib"):
        embedding = DlibResNet().eval().requires_grad_(False)
        x = torch.from_numpy(_lfw_chips(batch)).permute(0, 3, 1, 2).float() / 255
    else:
        embedding = MLPEmbedding((1, 28, 28), hidden=2048, dim=10).eval().requires_grad_(False)
        x = torch.rand(batch, 1, 28, 28)
    target = embedding(x).detach()
    start = time.perf_counter()
    refined = refine(noise_images(x.shape), embedding, target, steps, autocast=setting.endswith("bf16"))
    seconds = time.perf_counter() - start
    reached = float(squared_distance(embedding(refined), target).mean())
    return {
        "case": f"refine/{setting}",
        "images_per_s": batch / seconds,
        "steps_per_image": steps,
        "seconds_per_image": seconds / batch,
        "squared_distance": reached,
        "peak_rss_mib": _peak_rss_mib(),
    }


def measure(setting: str, batch: int = 64, steps: int = 30, warmup: int = 5) -> dict[str, float]:
    """Images per second of MNIST G training steps under ``setting`` (``residual_*``: the demo's residual
    U-Net), and this process's peak RSS in MiB."""
    torch.manual_seed(0)
    generator = UNet(in_channels=1, depth=3, width=64, residual=setting.startswith("residual"),
                     channels_last=setting.endswith("channels_last"))  # fmt: skip
    embedding = MLPEmbedding((1, 28, 28), hidden=2048, dim=10).eval().requires_grad_(False)
    x = torch.rand(batch, 1, 28, 28)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in setting)
    step = _generator_step(generator, embedding, Objective(ImageTerm("mse"), Budget(tau=0.02, beta=10.0)), x, autocast)

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": f"mnist_g/{setting}", "train_images_per_s": batch * steps / seconds, "peak_rss_mib": peak_mib}


CASES = {
    **{f"mnist_g/{s}": (lambda s=s: measure(s)) for s in MNIST_SETTINGS},
    "align/dlib": lambda: measure_alignment("dlib"),
    "align/facenet": lambda: measure_alignment("facenet"),
    "dlib_resnet/dlib_native": measure_dlib_native,
    **{f"dlib_resnet/port_{s}": (lambda s=s: measure_dlib_port(s)) for s in PORT_SETTINGS},
    **{f"lfw_g/{s}": (lambda s=s: measure_face_generator(s)) for s in ("fp32", "bf16_channels_last")},
    **{f"lfw_carrier/{s}": (lambda s=s: measure_carrier(s)) for s in ("fp32", "bf16")},
    **{f"refine/{s}": (lambda s=s: measure_refinement(s)) for s in ("dlib", "dlib_bf16", "mnist")},
    **{f"lfw_keyed_carrier/{s}": (lambda s=s: measure_carrier(s, keyed=True)) for s in ("fp32", "bf16")},
    "store/enrol": measure_enrol,
    "store/verify": measure_verify,
    **{f"store/identify_{n}": (lambda n=n: measure_identify(n)) for n in (10_000, 100_000, 1_000_000)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", choices=sorted(CASES), help="measure one case in this process (internal)")
    parser.add_argument("--only", default="", help="run only the cases whose name starts with this")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(CASES[args.one]()))
        return
    rows = []
    for case in (c for c in CASES if c.startswith(args.only)):
        cmd = [sys.executable, "-m", "distortion.bench", "--one", case]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'case':<36}{'forward img/s':>15}{'train img/s':>13}{'peak RSS MiB':>14}  notes")
    for row in rows:
        fwd, train = row.get("images_per_s", float("nan")), row.get("train_images_per_s", float("nan"))
        notes = ""
        if "one_at_a_time_per_s" in row:
            notes = f"batches of 32; one at a time {row['one_at_a_time_per_s']:.1f} faces/s"
        if "latency_ms_p95" in row:
            notes = f"latency p50 {row['latency_ms_p50']:.2f} ms, p95 {row['latency_ms_p95']:.2f} ms"
            if "recall_at_1_vs_exact" in row:
                notes += (f" (warm {row['warm_latency_ms_p50']:.2f} / {row['warm_latency_ms_p95']:.2f} ms), "
                          f"{row['index']}, recall@1 vs exact {row['recall_at_1_vs_exact']:.3f}, "
                          f"build {row['build_s']:.0f} s")  # fmt: skip
        if "seconds_per_image" in row:
            notes = (f"{row['steps_per_image']} steps, {row['seconds_per_image']:.3f} s per image, "
                     f"squared distance {row['squared_distance']:.2e}")  # fmt: skip
        print(f"{row['case']:<36}{fwd:>15.1f}{train:>13.1f}{row['peak_rss_mib']:>14.0f}  {notes}")
    out = Path("bench_out")
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
