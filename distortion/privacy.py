"""``distortion privacy``: the privacy evidence for a trained G, on MNIST or LFW (ISO/IEC 24745 and 30136).

- Irreversibility: an inversion attack (:mod:`distortion.inversion`). An attacker who can query G
  trains H on ``(G(x), x)`` of the training identities; on the test pairs we report SSIM and PSNR of
  H(G(x)) against x, whether the stand-in for a person (the digit reader; the face detectors)
  recognises the reconstruction, and the attack success rate: the share of reconstructions F
  accepts as the original person at the threshold for FAR 0.1% (against the same image and against
  another image of the person). The stored G(x) is scored the same way for comparison.
- Renewability and unlinkability: with a second G trained with another seed ("re-issued"), mated
  scores compare F(G1(a)) with F(G2(b)) for the genuine test pairs, non-mated scores for the impostor
  pairs; D_sys and D(s) of Gomez-Barrero et al. (:mod:`distortion.unlinkability`) and the EER of
  cross-generator matching.
- A second recognizer: whether another embedding network still matches G(x) to x.

Writes ``report.json``, ``report.md``, ``grid.png`` (originals, G(x), H(G(x))),
``unlinkability.png`` and its scores ``unlinkability_scores.npz`` into ``out``, and logs them to an
(offline by default) W&B run.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torchvision.utils import save_image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from callbacks.image_grid import pair_grid  # noqa: E402
from datamodules import LFWDataModule, MNISTDataModule  # noqa: E402
from distortion.backbones import create_backbone  # noqa: E402
from distortion.face_detection import make_detector  # noqa: E402
from distortion.image_metrics import psnr, ssim  # noqa: E402
from distortion.inversion import make_inverter, train_inverter  # noqa: E402
from distortion.lfw_eval import view_metrics, write_report  # noqa: E402
from distortion.modules.base import load_frozen  # noqa: E402
from distortion.modules.distortion import load_distortion_module  # noqa: E402
from distortion.modules.embedding import EmbeddingModule  # noqa: E402
from distortion.modules.reader import ReaderModule  # noqa: E402
from distortion.unlinkability import global_unlinkability, local_unlinkability  # noqa: E402
from distortion.verification import best_threshold, pair_scores, threshold_at_far  # noqa: E402
from distortion.wandb_report import log_report_to_wandb  # noqa: E402

__all__ = ["privacy"]

FAR = 1e-3  # the operating point of the attack success rate


def privacy(
    ckpt: str,
    renewed_ckpt: str | None = None,
    second_embedding: str | None = None,
    reader_ckpt: str | None = None,
    data: str | None = None,
    cache: str | None = None,
    out: str | None = None,
    attack_steps: int = 2000,
    attack_batch_size: int = 32,
    attack_lr: float = 3e-3,
    attack_depth: int = 3,
    attack_width: int = 32,
    limit_pairs: int = 0,
    detect_images: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    wandb: bool = True,
) -> dict:
    """Write the privacy report of the G in ``ckpt`` (MNIST or faces, told by its F).

    Args:
        ckpt: a DistortionModule checkpoint (the G under attack, with its frozen F).
        renewed_ckpt: a G trained like ``ckpt`` with another seed, for renewability and unlinkability.
        second_embedding: another recognizer: an EmbeddingModule checkpoint (MNIST) or a backbone
            name (faces, e.g. ``facenet``, which needs its weights).
        reader_ckpt: MNIST: the evaluation reader, which reads originals, G(x) and reconstructions.
        data: the data root; default ``$DISTORTION_DATA``.
        cache: faces: the aligned-chip cache; default ``$DISTORTION_CACHE/lfw_<aligner>``.
        out: the report folder; default ``<folder of the checkpoints>/../privacy``.
        attack_steps, attack_batch_size, attack_lr: the attacker's training of H.
        attack_depth, attack_width: the size of H (a U-Net).
        limit_pairs: score only the first N test pairs (0 = all: MNIST 10,000, LFW View 2 6,000).
        detect_images: faces: run the face detectors on the first N test images (dlib's CNN
            detector on a fifth of them; it takes 0.07 s an image here).
        batch_size: evaluation batch size.
        seed: seed of the attacker's initialisation and data order.
        wandb: also log the numbers and images to a W&B run.
    """
    torch.manual_seed(seed)
    module = load_distortion_module(ckpt)
    generator, embedding = module.generator, module.embedding
    renewed = load_distortion_module(renewed_ckpt).generator if renewed_ckpt else None
    second = _second_recognizer(second_embedding)  # every input is checked before the attack trains
    reader = load_frozen(ReaderModule, reader_ckpt, "net") if reader_ckpt else None
    faces = getattr(embedding, "aligner", None) is not None
    datamodule = (
        LFWDataModule(data, cache, embedding.aligner, batch_size=attack_batch_size, seed=seed)
        if faces
        else MNISTDataModule(data_dir=data, batch_size=attack_batch_size, seed=seed)
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    out_dir = Path(out) if out else Path(ckpt).resolve().parent.parent / "privacy"

    channels = datamodule.datasets["test"][0][0].shape[0]
    inverter = make_inverter(channels, attack_depth, attack_width)
    training = train_inverter(generator, inverter, datamodule.train_dataloader(), attack_steps, attack_lr)

    detectors = {name: make_detector(name) for name in ("dlib_hog", "dlib_cnn", "mtcnn")} if faces else {}
    loader = torch.utils.data.DataLoader(datamodule.datasets["test"], batch_size=batch_size)
    cols: dict[str, list[Tensor]] = defaultdict(list)
    found: dict[str, list[bool]] = defaultdict(list)
    grid: list[Tensor] = []
    with torch.no_grad():
        for x_a, y_a, x_b, _, same, *_ in tqdm(loader, desc="privacy", unit="batch"):
            g_a = generator(x_a).float().clamp(0, 1)
            r_a = inverter(g_a).float().clamp(0, 1)
            cols["same"].append(same.bool())
            for name, images in (("x_a", x_a), ("x_b", x_b), ("g_a", g_a), ("r_a", r_a)):
                cols[f"emb_{name}"].append(embedding(images).float())
            if renewed is not None:
                cols["emb_renewed_b"].append(embedding(renewed(x_b).float().clamp(0, 1)).float())
            if second is not None:
                for name, images in (("x_a", x_a), ("x_b", x_b), ("g_a", g_a)):
                    cols[f"second_{name}"].append(second(images).float())
            for name, images in (("distorted", g_a), ("reconstructed", r_a)):
                cols[f"ssim_{name}"].append(ssim(x_a, images))
                cols[f"psnr_{name}"].append(psnr(x_a, images))
            if reader is not None:
                for name, images in (("original", x_a), ("distorted", g_a), ("reconstructed", r_a)):
                    cols[f"read_{name}"].append(reader(images).argmax(1) == y_a)
            if detectors:
                _detect(detectors, {"original": x_a, "distorted": g_a, "reconstructed": r_a}, found, detect_images)
            if len(grid) < 16:
                grid += list(zip(x_a, g_a, r_a))[: 16 - len(grid)]
            if limit_pairs and sum(len(s) for s in cols["same"]) >= limit_pairs:
                break
    table = {k: torch.cat(v)[: limit_pairs or None] for k, v in cols.items()}

    report: dict = {"checkpoint": str(ckpt), "renewed_checkpoint": renewed_ckpt, "pairs": len(table["same"])}
    report["inversion"] = _inversion_section(table, training) | _recognised(table, found)
    if renewed is not None:
        report["unlinkability"] = _unlinkability_section(table, out_dir)
    if second is not None:
        report["second_recognizer"] = {"name": second_embedding} | _second_section(table)

    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, out_dir, "Privacy report")
    x, g, r = (torch.stack(t) for t in zip(*grid))
    save_image(pair_grid(x, g, r, per_row=8, scale=1 if faces else 3), out_dir / "grid.png")
    if wandb:
        log_report_to_wandb(report, out_dir, f"privacy_{out_dir.parent.name}", "privacy", ["grid", "unlinkability"])
    return report


def _second_recognizer(spec: str | None) -> nn.Module | None:
    """An EmbeddingModule checkpoint (path ending in ``.ckpt``) or a registered backbone name."""
    if spec is None:
        return None
    if spec.endswith(".ckpt"):
        return load_frozen(EmbeddingModule, spec, "net")
    return create_backbone(spec).eval().requires_grad_(False)


def _detect(detectors: dict, images: dict[str, Tensor], found: dict[str, list[bool]], limit: int) -> None:
    """Append whether each detector finds a face in each kind of image, up to ``limit`` images (a fifth for the CNN)."""
    for kind, batch in images.items():
        uint8 = batch.mul(255).round().byte().permute(0, 2, 3, 1).numpy()
        for name, detect in detectors.items():
            key = f"{kind}/{name}"
            room = max(0, (limit // 5 if name == "dlib_cnn" else limit) - len(found[key]))
            if room:
                found[key] += list(detect(uint8[:room]))


def _accept_rate(scores: Tensor, threshold: Tensor) -> float:
    return float((scores.double() >= threshold).double().mean())


def _inversion_section(t: dict[str, Tensor], training: dict[str, float]) -> dict[str, float]:
    """Image similarity of G(x) and H(G(x)) to x, and how often F accepts each as the original person."""
    same = t["same"]
    originals = pair_scores(t["emb_x_a"], t["emb_x_b"])
    threshold = threshold_at_far(originals[~same], FAR)
    section: dict[str, float] = {"threshold_far_1e-3": float(threshold)}
    for name in ("distorted", "reconstructed"):
        section[f"ssim_{name}"] = float(t[f"ssim_{name}"].mean())
        section[f"psnr_{name}"] = float(t[f"psnr_{name}"].mean())
    for name, key in (("distorted", "emb_g_a"), ("reconstructed", "emb_r_a")):
        section[f"accepted_same_image_{name}"] = _accept_rate(pair_scores(t[key], t["emb_x_a"]), threshold)
        other = pair_scores(t[key], t["emb_x_b"])
        section[f"accepted_other_image_{name}"] = _accept_rate(other[same], threshold)
        section[f"false_accept_{name}"] = _accept_rate(other[~same], threshold)
    section["accepted_other_image_original"] = _accept_rate(originals[same], threshold)
    return section | {f"attack_{k}": v for k, v in training.items()}


def _recognised(t: dict[str, Tensor], found: dict[str, list[bool]]) -> dict[str, float]:
    """The stand-in for a person on originals, G(x) and H(G(x)): reader accuracy or face-detection rates."""
    section = {f"reader_acc_{k[5:]}": float(v.float().mean()) for k, v in t.items() if k.startswith("read_")}
    section |= {f"face_detected/{k}": float(np.mean(v)) for k, v in found.items()}
    if found:
        section["face_detected/images"] = len(found["original/dlib_hog"])
    return section


def _unlinkability_section(t: dict[str, Tensor], out_dir: Path) -> dict[str, float]:
    """Mated / non-mated scores across the two generators, D_sys, the cross-generator EER, and the plot."""
    same = t["same"]
    cross = pair_scores(t["emb_g_a"], t["emb_renewed_b"])
    mated, non_mated = cross[same], cross[~same]
    section = {"d_sys": float(global_unlinkability(mated, non_mated))}
    section |= {f"cross_generator_{k}": v for k, v in view_metrics(cross, same).items()}
    section |= {
        f"same_generator_deploy_{k}": v for k, v in view_metrics(pair_scores(t["emb_g_a"], t["emb_x_b"]), same).items()
    }
    section |= {"mated_scores": int(same.sum()), "non_mated_scores": int((~same).sum())}
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "unlinkability_scores.npz", mated=mated.numpy(), non_mated=non_mated.numpy())
    plot_unlinkability(mated, non_mated, out_dir / "unlinkability.png", section["d_sys"])
    return section


def _second_section(t: dict[str, Tensor]) -> dict[str, float]:
    """The second recognizer at its own operating point (best threshold on original pairs)."""
    same = t["same"]
    originals = pair_scores(t["second_x_a"], t["second_x_b"])
    deploy = pair_scores(t["second_g_a"], t["second_x_b"])
    threshold = best_threshold(originals, same)
    section = {
        "accuracy_original": float(((originals.double() >= threshold) == same).double().mean()),
        "accuracy_deploy": float(((deploy.double() >= threshold) == same).double().mean()),
    }
    section |= {f"original_{k}": v for k, v in view_metrics(originals, same).items()}
    section |= {f"deploy_{k}": v for k, v in view_metrics(deploy, same).items()}
    far_threshold = threshold_at_far(originals[~same], FAR)
    section["accepted_same_image_distorted"] = _accept_rate(
        pair_scores(t["second_g_a"], t["second_x_a"]), far_threshold
    )
    return section


def plot_unlinkability(mated: Tensor, non_mated: Tensor, path: Path, d_sys: float, bins: int = 100) -> None:
    """The two score distributions and the local measure D(s), as in Gomez-Barrero et al. (2018)."""
    centres, local = local_unlinkability(mated, non_mated, bins)
    half = float(centres[1] - centres[0]) / 2
    edges = np.linspace(float(centres[0]) - half, float(centres[-1]) + half, bins + 1)  # the bins of D(s)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.hist(mated.numpy(), bins=edges, alpha=0.5, density=True, label="mated (same person, G1 vs G2)")
    ax.hist(non_mated.numpy(), bins=edges, alpha=0.5, density=True, label="non-mated")
    ax.set(xlabel="score 1 / (1 + ||F(G1(a)) - F(G2(b))||)", ylabel="density", title=f"D_sys = {d_sys:.3f}")
    occupied = (np.histogram(mated.numpy(), edges)[0] + np.histogram(non_mated.numpy(), edges)[0]) > 0
    twin = ax.twinx()  # D(s) where a score fell; an empty bin has no likelihood ratio
    twin.plot(centres.numpy()[occupied], local.numpy()[occupied], color="black", lw=1.2, label="D(s)")
    twin.set(ylim=(0, 1.05), ylabel="D(s)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
