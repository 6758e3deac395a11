"""``distortion evaluate``: the LFW report for a trained G (the way the face-recognition field measures).

For every image named in LFW's pair lists it computes G(x), F(x) and F(G(x)) once, then scores:

- verification on View 2 (10-fold accuracy, EER, ROC AUC, TAR at FAR) and View 1 (DevTest, with
  the threshold from DevTrain) for original vs original, distorted enrolment vs original probe
  ("deploy": the store keeps only G(x)), and distorted vs distorted;
- distortion over View 2's images: content change, 100 * d_L1 / d_MSE / d_DSSIM, SSIM, PSNR;
- how much a distorted image still looks like a face: the share of images in which each face
  detector finds one, for originals and for G(x) (detectors G saw in training listed apart);
- the distance ``||F(x) - F(G(x))||`` per image against the genuine and impostor distances of
  originals.

Writes ``report.json``, ``report.md``, ``roc.png``, ``grid.png`` and ``distances.png`` into ``out``
and, unless disabled, logs the same to an (offline by default) W&B run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.functional.classification import binary_roc  # noqa: E402
from torchvision.utils import save_image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from callbacks.distortion_metrics import IMAGE_METRICS  # noqa: E402
from callbacks.image_grid import pair_grid  # noqa: E402
from callbacks.verification import plot_roc  # noqa: E402
from datamodules.data_root import resolve_data_root  # noqa: E402
from datamodules.lfw_pairs import VIEW_FILES, read_pairs  # noqa: E402
from distortion.backbone_eval import lfw_protocol_images  # noqa: E402
from distortion.chip_cache import build_chip_cache, default_cache_dir  # noqa: E402
from distortion.face_detection import make_detector  # noqa: E402
from distortion.lfw_eval import lfw_report, pair_table, write_report  # noqa: E402
from distortion.modules.distortion import load_distortion_module  # noqa: E402
from distortion.wandb_report import log_report_to_wandb  # noqa: E402

__all__ = ["COMPARISONS", "evaluate"]

# (enrolment, probe) embeddings of each comparison
COMPARISONS = {"orig": ("orig", "orig"), "deploy": ("distorted", "orig"), "distorted": ("distorted", "distorted")}


def evaluate(
    ckpt: str,
    data: str | None = None,
    cache: str | None = None,
    out: str | None = None,
    batch_size: int = 32,
    detect_images: int = 2000,
    cnn_images: int = 500,
    seen_detectors: list[str] | None = None,
    limit: int = 0,
    wandb: bool = True,
) -> dict:
    """Write the LFW report of the G in ``ckpt``.

    Args:
        ckpt: a DistortionModule checkpoint trained on faces.
        data: the LFW root; default ``$DISTORTION_DATA/lfw``.
        cache: the aligned-chip cache; default ``$DISTORTION_CACHE/lfw_<aligner>``.
        out: the report folder; default ``<folder of the checkpoints>/../lfw_report``.
        batch_size: images per forward pass.
        detect_images: run the face detectors on the first N View 2 images, originals and G(x)
            (0 = all 7,701; HOG and MTCNN take about 25 ms per image here).
        cnn_images: of those, run dlib's CNN detector (0.07 s per image) on the first N only.
        seen_detectors: detectors used in G's loss; reported apart, never in the verdict.
        limit: evaluate only the first N protocol images (0 = all), for quick looks and tests;
            pairs with a missing image then count as rejections.
        wandb: also log the numbers and images to a W&B run (offline unless WANDB_MODE says otherwise).
    """
    module = load_distortion_module(ckpt)
    generator, embedding = module.generator, module.embedding
    lfw_root = Path(data) if data else resolve_data_root(None, "lfw") / "lfw"
    out_dir = Path(out) if out else Path(ckpt).resolve().parent.parent / "lfw_report"
    aligner = getattr(embedding, "aligner", None)
    if aligner is None:
        raise ValueError(f"{ckpt} was not trained through a face backbone; the LFW report needs one")
    chip_cache = build_chip_cache(lfw_root, cache or default_cache_dir(aligner), aligner)
    rows = chip_cache.rows()
    keys = [k for k in lfw_protocol_images(lfw_root) if k in rows][: limit or None]
    view2_images = {k for fold in read_pairs(lfw_root / VIEW_FILES["view2"]) for p in fold for k in p.images}

    start = time.perf_counter()
    embeddings: dict[str, dict] = {"orig": {}, "distorted": {}}
    sums, count = defaultdict(float), 0
    detectors = {name: make_detector(name) for name in ("dlib_hog", "dlib_cnn", "mtcnn")}
    found = {f"{kind}/{name}": [] for kind in ("original", "distorted") for name in detectors}
    grid_x, grid_g, shift = [], [], []
    with torch.no_grad():
        for s in tqdm(range(0, len(keys), batch_size), desc="evaluate", unit="batch"):
            batch_keys = keys[s : s + batch_size]
            x = torch.from_numpy(np.stack([chip_cache.chips[rows[k]] for k in batch_keys])).permute(0, 3, 1, 2)
            x = x.float().div(255)
            g = generator(x).float().clamp(0, 1)
            emb_x, emb_g = embedding(x).float(), embedding(g).float()
            for k, ex, eg in zip(batch_keys, emb_x, emb_g):
                embeddings["orig"][k], embeddings["distorted"][k] = ex, eg
            test = torch.tensor([k in view2_images for k in batch_keys])
            if not test.any():
                continue
            xt, gt = x[test], g[test]
            for name, fn in IMAGE_METRICS.items():
                sums[name] += float(fn(xt, gt).sum())
            count += len(xt)
            shift.append((emb_x[test] - emb_g[test]).norm(dim=1))
            take = 16 - len(grid_x)
            if take > 0:
                grid_x += list(xt[:take])
                grid_g += list(gt[:take])
            for kind, images in (("original", xt), ("distorted", gt)):
                uint8 = images.mul(255).round().byte().permute(0, 2, 3, 1).numpy()
                for name, detect in detectors.items():
                    key = f"{kind}/{name}"
                    limit_n = cnn_images if name == "dlib_cnn" else detect_images
                    room = max(0, limit_n - len(found[key])) if limit_n else len(uint8)
                    if room:
                        found[key] += list(detect(uint8[:room]))
    seconds = time.perf_counter() - start

    report: dict = {"checkpoint": str(ckpt)}
    for comparison, (enrol, probe) in COMPARISONS.items():
        report[comparison] = lfw_report(lfw_root, embeddings[enrol], embeddings[probe])
    report["distortion"] = {name: sums[name] / max(count, 1) for name in IMAGE_METRICS} | {"images": count}
    seen = set(seen_detectors or [])
    report["face_detected"] = {
        ("seen_in_training/" if key.split("/")[1] in seen else "") + key: float(np.mean(v)) for key, v in found.items()
    } | {"images": len(found["distorted/dlib_hog"]), "images_dlib_cnn": len(found["distorted/dlib_cnn"])}
    report["embedding_shift"] = _distribution(torch.cat(shift)) if shift else {}
    report["timing"] = {"seconds": seconds, "images": len(keys), "images_per_s": len(keys) / seconds}

    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, out_dir, "LFW report: distorted faces")
    save_image(pair_grid(torch.stack(grid_x), torch.stack(grid_g), per_row=8, scale=1), out_dir / "grid.png")
    _plot_roc(lfw_root, embeddings, out_dir / "roc.png")
    _plot_distances(lfw_root, embeddings, torch.cat(shift), out_dir / "distances.png")
    if wandb:
        log_report_to_wandb(
            report, out_dir, f"lfw_report_{out_dir.parent.name}", "evaluate", ["grid", "roc", "distances"]
        )
    return report


def _distribution(values: torch.Tensor) -> dict[str, float]:
    q = torch.quantile(values, torch.tensor([0.5, 0.95, 0.99]))
    return {"mean": float(values.mean()), "median": float(q[0]), "p95": float(q[1]), "p99": float(q[2])}


def _plot_roc(lfw_root: Path, embeddings: dict, path: Path) -> None:
    """TAR against FAR on View 2 for the three comparisons."""
    folds = read_pairs(lfw_root / VIEW_FILES["view2"])
    curves = {}
    for comparison, (enrol, probe) in COMPARISONS.items():
        scores, same, _, _ = pair_table(folds, embeddings[enrol], embeddings[probe])
        fpr, tpr, _ = binary_roc(scores.float(), same.long())
        curves[comparison] = (fpr, tpr)
    plot_roc(curves, path, min_far=1e-3, title="LFW View 2")


def _plot_distances(lfw_root: Path, embeddings: dict, shift: torch.Tensor, path: Path) -> None:
    """Histogram of ||F(x) - F(G(x))|| beside the genuine and impostor distances of original pairs."""
    folds = read_pairs(lfw_root / VIEW_FILES["view2"])
    scores, same, _, _ = pair_table(folds, embeddings["orig"], embeddings["orig"])
    distances = (1 / scores.clamp_min(1e-6) - 1).numpy()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    bins = np.linspace(0, 1.4, 71)
    ax.hist(shift.numpy(), bins=bins, alpha=0.6, density=True, label="||F(x) - F(G(x))||, same image")
    ax.hist(distances[same.numpy()], bins=bins, alpha=0.5, density=True, label="genuine pairs, originals")
    ax.hist(distances[~same.numpy()], bins=bins, alpha=0.5, density=True, label="impostor pairs, originals")
    ax.set(xlabel="embedding distance", ylabel="density", title="LFW View 2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
