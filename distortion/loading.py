"""A deployment from what a user names: a trained G's checkpoint, or F alone refined from noise, keyed by a keyed
model file or by the checkpoint's own transform; and its operating threshold, read in the same pass.

Every verb that distorts or matches photos (``evaluate``, ``privacy``, ``distort``, the store's verbs) and the
tools load their model here, through the one settings group :class:`ModelSource`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_model import KeyedModel
from distortion.modules.embedding import load_embedding
from distortion.modules.generator import load_generator_module
from distortion.runtime import place

__all__ = ["Deployment", "ModelSource", "load_deployment"]


@dataclass(frozen=True)
class ModelSource:
    """Where a deployment's networks come from (``--model.*`` flags).

    Args:
        ckpt: a ``distortion fit`` checkpoint of a G (with its frozen F; a keyed carrier's holds its transform and
            its calibrated threshold).
        embedding: instead of ``ckpt``: F alone (a backbone name, ``dlib``, or an EmbeddingModule checkpoint),
            its images refined from noise (``--enrolment.refine_steps`` >= 1).
        keyed: a keyed model file (``distortion fit-transform``): keys the store of a plain G or of F alone.
    """

    ckpt: str | None = None
    embedding: str | None = None
    keyed: str | None = None

    def check(self) -> None:
        """Exactly one of ``ckpt`` and ``embedding``."""
        if (self.ckpt is None) == (self.embedding is None):
            raise ValueError("give exactly one of --model.ckpt (a trained G) or --model.embedding (F alone, refined "
                             "from noise)")  # fmt: skip


@dataclass
class Deployment:
    """What a loaded model gives a verb: the :class:`Distorter`, F's name (recorded by a store) and the operating
    threshold calibrated on training people (``None`` where the source holds none)."""

    distorter: Distorter
    embedding_name: str
    threshold: float | None


def load_deployment(source: ModelSource, device: torch.device, enrolment: Enrolment = Enrolment()) -> Deployment:
    """Load ``source`` onto ``device`` (each file read once). A keyed checkpoint or ``source.keyed`` makes the
    deployment keyed, with the key of ``enrolment.key`` (or ``$DISTORTION_KEY_FILE``); its threshold is the keyed
    model file's, else the keyed checkpoint's. A key file given for a model that is not keyed is refused."""
    source.check()
    transform, threshold = None, None
    if source.ckpt is not None:
        module = load_generator_module(source.ckpt)
        generator, f, transform = module.generator, module.embedding, module.template_transform
        stored_threshold = getattr(module, "operating_threshold", None)
        if stored_threshold is not None and torch.isfinite(stored_threshold):
            threshold = float(stored_threshold)
    else:
        generator, f = None, load_embedding(source.embedding)
    place(device, generator, f)
    if source.keyed is not None:
        keyed = KeyedModel.load(source.keyed)
        transform, threshold = keyed.transform, keyed.threshold
    if transform is None and enrolment.key is not None:  # a key that would protect nothing: refuse, never drop it
        raise ValueError(f"a key file ({enrolment.key}) was given, but the model is not keyed: give a keyed carrier's "
                         "checkpoint or --model.keyed (a keyed model file of distortion fit-transform)")  # fmt: skip
    if transform is not None:
        transform = transform.to(device)
    return Deployment(Distorter(f, generator, enrolment, transform=transform), type(f).__name__, threshold)
