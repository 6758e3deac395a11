"""``distortion distort``: apply a trained G to a folder of photos (or one photo).

Each photo is aligned the way G's face backbone expects (into ``<out>/aligned``, resumable and
parallel like ``distortion align``), distorted in batches on the chosen device (optionally refined
against F and passed through a storage format), and saved as a PNG under ``<out>/distorted`` at the
photo's relative path. ``<out>/embeddings.json`` holds, per photo, the embedding F(stored image) a
biometric store would keep, how far it moved from F(x), how the face was found, and the files that
were skipped with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from distortion.backbones import require_face_backbone
from distortion.deployment.distorter import EmbeddedBatch, embed_batches
from distortion.deployment.enrolment import Enrolment
from distortion.faces.chip_cache import build_chip_cache, image_folder
from distortion.imaging.image_io import tensor_to_chips
from distortion.loading import ModelSource, load_deployment
from distortion.runtime import resolve_device

__all__ = ["distort"]


def _save(batch: EmbeddedBatch, rows: list[dict], base: Path, out_dir: Path, results: dict[str, dict]) -> None:
    """Write the stored images of one batch as PNGs and record their templates in ``results``."""
    shifts = (batch.emb_x - batch.emb_stored).norm(dim=1).tolist()
    for r, image, emb, shift in zip(rows, tensor_to_chips(batch.stored), batch.emb_stored.cpu(), shifts):
        relative = Path(r["path"]).relative_to(base)
        target = (out_dir / "distorted" / relative).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(target)
        results[str(relative)] = {
            "distorted": str(target.relative_to(out_dir)), "face_found_by": r["method"], "note": r["note"],
            "embedding": [round(v, 6) for v in emb.tolist()], "embedding_shift": shift,
        }  # fmt: skip


def distort(
    model: ModelSource,
    input: str,
    out: str,
    batch_size: int = 16,
    workers: int | None = None,
    device: str = "auto",
    enrolment: Enrolment = Enrolment(storage="png"),
    seed: int = 0,
) -> dict:
    """Align, distort and save every photo under ``input``.

    Args:
        model: the model (:class:`~distortion.loading.ModelSource`): a G trained on faces (``--model.ckpt``), or F
            alone (``--model.embedding dlib`` with ``--enrolment.refine_steps``); ``--model.keyed`` keys it.
        input: a folder of photos (searched recursively) or a single photo.
        out: the output folder.
        batch_size: photos per forward pass.
        workers: processes for alignment (default: every core).
        device: ``auto`` (the GPU when there is one), ``cpu``, ``cuda``, ...
        enrolment: refinement against F, the storage the embeddings see (``png``: the files written here, or
            ``jpeg75`` etc. to see what a JPEG copy would keep), and a keyed store's key file
            (``--enrolment.key``, or ``$DISTORTION_KEY_FILE``): its fingerprint is recorded beside the carriers in
            ``embeddings.json``, which then holds the keyed templates F(stored).
        seed: seed of the noise (carriers).
    """
    torch.manual_seed(seed)
    run_device = resolve_device(device)
    distorter = load_deployment(model, run_device, enrolment).distorter
    aligner = require_face_backbone(distorter.embedding, "distortion distort").aligner
    out_dir = Path(out)
    folder = image_folder(input)
    base = folder if folder.is_dir() else folder.parent
    cache = build_chip_cache(input, out_dir / "aligned", aligner, workers)
    aligned = [row for row in cache.index if row["row"] >= 0]
    skipped = {str(Path(row["path"]).relative_to(base)): row["note"] for row in cache.index if row["row"] < 0}
    batches = cache.batches([r["row"] for r in aligned], batch_size)
    results: dict[str, dict] = {}
    for s, batch in enumerate(embed_batches(batches, distorter.embedding, run_device, distorter, desc="distort")):
        _save(batch, aligned[s * batch_size : (s + 1) * batch_size], base, out_dir, results)
    summary = {"checkpoint": model.ckpt, "embedding": model.embedding, "storage": enrolment.storage,
               "key_fingerprint": distorter.fingerprint, "distorted": len(results), "skipped": skipped,
               "images": results}  # fmt: skip
    (out_dir / "embeddings.json").write_text(json.dumps(summary, indent=1))
    centred = sum(1 for r in results.values() if r["face_found_by"] == "centre")
    print(f"{out_dir}: {len(results)} distorted ({centred} without a detected face, centred crop), "
          f"{len(skipped)} skipped")  # fmt: skip
    for path, reason in skipped.items():
        print(f"  skipped {path}: {reason}")
    return summary
