"""``make bench``: throughput and peak memory of the pieces that bound a run's time on this machine.

Each case runs in a fresh process (so its peak resident memory is its own). A case that runs F or G does so
in float32 (``*fp32``) and in bfloat16 autocast (``*bf16``); bfloat16 is measured only where the CPU computes it
natively (:mod:`distortion.precision`; ``--emulated true`` measures it anyway), and a last table gives the ratio
bfloat16 / float32 of each pair. The header names the CPU and the precision every run chooses on it.

- ``mnist_g/*``: full training steps of the demo's MNIST G (residual U-Net, channels-last) against the paper's
  MLP F at batch 64 (G forward, F on x and G(x), MSE + threshold loss, backward, Adam);
- ``reader/*``: training steps of the digit reader (``ConvClassifier``, batch 128, cross-entropy, Adam);
- ``align/*``: face alignment of real LFW photos, one process (dlib: HOG detector, 5 landmarks,
  150 px chip; facenet: MTCNN, 160 px);
- ``dlib_resnet/*``: the face ResNet at batch 32 on real LFW chips: dlib's own
  ``compute_face_descriptor`` and the port (channels-last), forward and forward + backward to the input (what
  training G through F costs);
- ``lfw_g/*``: the LFW config's G on 150 px chips: inference, and training steps through F;
- ``lfw_carrier/*``: the carrier G of ``configs/lfw_carrier.yaml`` at batch 32: distorting faces
  (F(x), then the decoder), and its training steps through F with the storage round trips;
- ``refine/*``: refinement from noise (no G) for 100 steps at batch 32 against dlib's ResNet and the
  paper's MNIST MLP: seconds and steps per image, and the squared embedding distance reached;
- ``lfw_keyed_carrier/*``: the keyed carrier (F, the whitened rotation under a key, the decoder) at batch 32;
- ``store/*``: enrolment, verification and 1:N identification at 10^4, 10^5 and 10^6 templates
  (:mod:`distortion.store.bench`);
- ``service/*``: verification at 1, 4 and 16 concurrent clients and identification among 10^5 templates through a
  real service process on the loopback address (:mod:`distortion.service.bench`).

Prints a table and writes ``bench_out/bench.json``.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jsonargparse
import numpy as np
import torch
from torch import Tensor, nn

from distortion.backbones import DlibResNet
from distortion.backbones.dlib_resnet import DLIB_RESNET_FILE, dlib_model_path
from distortion.deployment.distorter import Distorter
from distortion.deployment.keys import generate_key
from distortion.deployment.refinement import noise_images, refine
from distortion.faces.alignment import align_photo, make_aligner
from distortion.models import CarrierGenerator, ConvClassifier, MLPEmbedding, UNet
from distortion.objective import Budget, ImageTerm, Objective
from distortion.objective.losses import squared_distance
from distortion.paths import lfw_root
from distortion.precision import autocast, native_bfloat16, trainer_precision
from distortion.service.bench import measure_service_identify, measure_service_verify
from distortion.store.bench import lfw_keyed_transform, measure_enrol, measure_identify, measure_verify

PRECISIONS = ("fp32", "bf16")


def _precision(setting: str) -> str:
    """``bf16`` for a ``*bf16`` setting, else ``32``."""
    return "bf16" if setting.endswith("bf16") else "32"


def _autocast(setting: str):
    """bfloat16 autocast on the CPU for a ``*bf16`` setting, float32 otherwise."""
    return autocast("cpu", _precision(setting))


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
    """The first ``count`` LFW photos, decoded (alignment is timed without the file reads)."""
    from distortion.faces.alignment import read_rgb
    from distortion.faces.chip_cache import list_images

    return [read_rgb(p)[0] for p in list_images(lfw_root())[:count]]


def measure_alignment(aligner_name: str, count: int = 64) -> dict[str, float]:
    """Aligned photos per second in one process (detection, landmarks, chip)."""
    photos = _lfw_photos(count)
    aligner = make_aligner(aligner_name)
    seconds = _timed(lambda: [aligner(p) for p in photos], repeats=1, warmup=0)
    return {"case": f"align/{aligner_name}", "images_per_s": count / seconds, "peak_rss_mib": _peak_rss_mib()}


def _lfw_chips(batch: int) -> np.ndarray:
    from distortion.faces.chip_cache import list_images

    aligner = make_aligner("dlib")
    return np.stack([align_photo(p, aligner).chip for p in list_images(lfw_root())[:batch]])


def measure_dlib_native(batch: int = 32, repeats: int = 3) -> dict[str, float]:
    """dlib's own ``compute_face_descriptor`` on a batch of chips."""
    import dlib

    chips = [np.ascontiguousarray(c) for c in _lfw_chips(batch)]
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path(DLIB_RESNET_FILE)))
    seconds = _timed(lambda: recognizer.compute_face_descriptor(chips), repeats)
    return {"case": "dlib_resnet/dlib_native", "images_per_s": batch / seconds, "peak_rss_mib": _peak_rss_mib()}


def measure_dlib_port(setting: str, batch: int = 32, repeats: int = 5) -> dict[str, float]:
    """The port (channels-last): forward (no grad) and forward + backward to the input, images per second."""
    chips = _lfw_chips(batch)
    model = DlibResNet().eval().requires_grad_(False).to(memory_format=torch.channels_last)
    x = (torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255).contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.no_grad(), _autocast(setting):
            model(x)

    def forward_backward() -> None:
        xg = x.clone().requires_grad_(True)
        with _autocast(setting):
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
    generator = UNet(in_channels=3, depth=4, width=16, residual=True, channels_last=True)
    embedding = DlibResNet().eval().requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.from_numpy(_lfw_chips(batch)).permute(0, 3, 1, 2).float() / 255
    objective = Objective(ImageTerm("coarse_decorrelation"), Budget(tau=0.04, beta=10.0))
    train = _generator_step(generator, embedding, objective, x, setting)

    def infer() -> None:
        with torch.no_grad(), _autocast(setting):
            generator(x)

    return {
        "case": f"lfw_g/{setting}",
        "images_per_s": batch / _timed(infer, repeats),
        "train_images_per_s": batch / _timed(train, repeats),
        "peak_rss_mib": _peak_rss_mib(),
    }


def _generator_step(
    generator: nn.Module, embedding: nn.Module, objective: Objective, x: Tensor, setting: str
) -> Callable[[], None]:
    """One training step of G under ``objective`` on the fixed batch ``x``, with its own Adam, in the precision
    of ``setting``."""
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)

    def step() -> None:
        with _autocast(setting):
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
    transform, key = lfw_keyed_transform().fit(torch.randn(256, 128) * 0.05), generate_key()
    distorter = Distorter(embedding, generator, transform=transform if keyed else None, key=key if keyed else None)
    objective = Objective(ImageTerm("decorrelation"), Budget(tau=0.02, beta=10.0, robust_storage=True))
    train = _generator_step(generator, embedding, objective, x, setting)

    def infer() -> None:
        with torch.no_grad(), _autocast(setting):
            distorter(x)

    return {
        "case": f"lfw_{'keyed_' if keyed else ''}carrier/{setting}",
        "images_per_s": batch / _timed(infer, repeats),
        "train_images_per_s": batch / _timed(train, 3, warmup=1),
        "peak_rss_mib": _peak_rss_mib(),
    }


def measure_refinement(setting: str, batch: int = 32, steps: int = 100) -> dict[str, float]:
    """Refinement from noise: ``dlib_*`` on real LFW chips, ``mnist`` on test digits with the paper's MLP
    (random weights: the cost is the same), in the precision of ``setting``."""
    torch.manual_seed(0)
    if setting.startswith("dlib"):
        embedding = DlibResNet().eval().requires_grad_(False)
        x = torch.from_numpy(_lfw_chips(batch)).permute(0, 3, 1, 2).float() / 255
    else:
        embedding = MLPEmbedding((1, 28, 28), hidden=2048, dim=10).eval().requires_grad_(False)
        x = torch.rand(batch, 1, 28, 28)
    target = embedding(x).detach()
    start = time.perf_counter()
    refined = refine(noise_images(x.shape), embedding, target, steps, precision=_precision(setting))
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


def measure_mnist_generator(setting: str, batch: int = 64, steps: int = 30) -> dict[str, float]:
    """Images per second of training steps of the demo's MNIST G (``configs/mnist_generator.yaml``: residual
    U-Net, channels-last) against the paper's MLP F, and this process's peak RSS in MiB."""
    torch.manual_seed(0)
    generator = UNet(in_channels=1, depth=3, width=64, residual=True, channels_last=True)
    embedding = MLPEmbedding((1, 28, 28), hidden=2048, dim=10).eval().requires_grad_(False)
    x = torch.rand(batch, 1, 28, 28)
    step = _generator_step(generator, embedding, Objective(ImageTerm("mse"), Budget(tau=0.02, beta=10.0)), x, setting)
    seconds = _timed(step, steps, warmup=5)
    return {"case": f"mnist_g/{setting}", "train_images_per_s": batch / seconds, "peak_rss_mib": _peak_rss_mib()}


def measure_reader(setting: str, batch: int = 128, steps: int = 30) -> dict[str, float]:
    """Images per second of training steps of the digit reader (``configs/mnist_reader.yaml``'s ConvClassifier)."""
    torch.manual_seed(0)
    reader = ConvClassifier(in_channels=1, num_classes=10, width=32)
    optimizer = torch.optim.Adam(reader.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step() -> None:
        with _autocast(setting):
            loss = nn.functional.cross_entropy(reader(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds = _timed(step, steps, warmup=5)
    return {"case": f"reader/{setting}", "train_images_per_s": batch / seconds, "peak_rss_mib": _peak_rss_mib()}


CASES = {
    **{f"mnist_g/{s}": (lambda s=s: measure_mnist_generator(s)) for s in PRECISIONS},
    **{f"reader/{s}": (lambda s=s: measure_reader(s)) for s in PRECISIONS},
    "align/dlib": lambda: measure_alignment("dlib"),
    "align/facenet": lambda: measure_alignment("facenet"),
    "dlib_resnet/dlib_native": measure_dlib_native,
    **{f"dlib_resnet/port_{s}": (lambda s=s: measure_dlib_port(s)) for s in PRECISIONS},
    **{f"lfw_g/{s}": (lambda s=s: measure_face_generator(s)) for s in PRECISIONS},
    **{f"lfw_carrier/{s}": (lambda s=s: measure_carrier(s)) for s in PRECISIONS},
    **{
        f"refine/{n}_{s}": (lambda n=n, s=s: measure_refinement(f"{n}_{s}"))
        for n in ("dlib", "mnist")
        for s in PRECISIONS
    },
    **{f"lfw_keyed_carrier/{s}": (lambda s=s: measure_carrier(s, keyed=True)) for s in PRECISIONS},
    "store/enrol": measure_enrol,
    "store/verify": measure_verify,
    **{f"store/identify_{n}": (lambda n=n: measure_identify(n)) for n in (10_000, 100_000, 1_000_000)},
    "service/verify": measure_service_verify,
    "service/identify_100000": measure_service_identify,
}


def machine() -> dict[str, str | int | bool]:
    """What a timing depends on: the CPU, whether it computes bfloat16 natively, threads, torch."""
    from distortion.precision import cpu_flags

    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else ""
    )
    flags = cpu_flags()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else platform.machine()
    return {"cpu": model, "isa": isa, "native_bfloat16": native_bfloat16("cpu"),
            "chosen_precision": trainer_precision("cpu"), "threads": torch.get_num_threads(),
            "torch": torch.__version__}  # fmt: skip


def ratios(rows: list[dict]) -> list[tuple[str, str, float]]:
    """``(case, measure, bf16 / fp32)`` for every case measured in both precisions."""
    by_case = {row["case"]: row for row in rows}
    found = []
    for case, row in by_case.items():
        twin = by_case.get(case.removesuffix("bf16") + "fp32") if case.endswith("bf16") else None
        for measure in ("images_per_s", "train_images_per_s"):
            if twin and measure in row and measure in twin:
                found.append((case.removesuffix("_bf16").removesuffix("/bf16"), measure, row[measure] / twin[measure]))
    return found


def main(one: str | None = None, only: str = "", emulated: bool = False) -> None:
    """Measure the cases in fresh processes and print the table.

    Args:
        one: measure this one case in this process and print its JSON (how each case runs).
        only: run only the cases whose name starts with this.
        emulated: measure bfloat16 also where it is emulated.
    """
    if one:
        if one not in CASES:
            raise SystemExit(f"unknown case {one!r}; known: {sorted(CASES)}")
        print(json.dumps(CASES[one]()))
        return
    host = machine()
    skipped = [] if host["native_bfloat16"] or emulated else [c for c in CASES if c.endswith("bf16")]
    rows = []
    for case in (c for c in CASES if c.startswith(only) and c not in skipped):
        cmd = [sys.executable, "-m", "distortion.bench", "--one", case]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    print(
        f"{host['cpu']} ({host['isa']}, bfloat16 {'native' if host['native_bfloat16'] else 'emulated'}; runs "
        f"choose {host['chosen_precision']}), {host['threads']} threads, torch {host['torch']}"
    )
    if skipped:
        print("bfloat16 cases skipped: this CPU emulates bfloat16 (--emulated measures them)")
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
        if "in_process_per_s" in row:
            notes = (f"in process {row['in_process_per_s']:.1f} verifications/s; 16 clients / 1: "
                     f"{row['speedup_16_over_1']:.2f}x; answered {row['startup_s']:.1f} s after its start")  # fmt: skip
        if "align_embed_p95_ms" in row:
            notes = (f"p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms; align + embed p95 "
                     f"{row['align_embed_p95_ms']:.0f} ms: +{row['p95_over_align_embed_ms']:.0f} ms")  # fmt: skip
        if "seconds_per_image" in row:
            notes = (f"{row['steps_per_image']} steps, {row['seconds_per_image']:.3f} s per image, "
                     f"squared distance {row['squared_distance']:.2e}")  # fmt: skip
        memory = row.get("peak_rss_mib", float("nan"))
        print(f"{row['case']:<36}{fwd:>15.1f}{train:>13.1f}{memory:>14.0f}  {notes}")
        for level in row.get("levels", []):
            print(f"  {level['clients']:>2} clients: {level['per_s']:.1f} requests/s, p50 {level['p50_ms']:.0f} ms, "
                  f"p95 {level['p95_ms']:.0f} ms, p99 {level['p99_ms']:.0f} ms, {level['errors']} errors of "
                  f"{level['requests']}")  # fmt: skip
    found = ratios(rows)
    if found:
        print(f"\n{'bfloat16 / float32':<36}{'measure':>20}{'ratio':>8}")
        for case, measure, ratio in found:
            print(f"{case:<36}{measure:>20}{ratio:>8.2f}")
    out = Path("bench_out")
    out.mkdir(exist_ok=True)
    report = {"machine": host, "rows": rows, "bf16_over_fp32": [list(r) for r in found]}
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
