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
from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key
from distortion.modules.embedding import load_embedding
from distortion.modules.generator import load_generator_module
from distortion.runtime import place

__all__ = ["Deployment", "LoadedModel", "ModelSource", "load_deployment", "load_model"]


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
class LoadedModel:
    """The networks of a :class:`ModelSource` and the operating threshold calibrated on training people (``None``
    where the source holds none): what every :class:`Distorter` of one process shares (the service makes one per
    tenant key)."""

    embedding: torch.nn.Module
    generator: torch.nn.Module | None
    transform: TemplateTransform | None
    threshold: float | None

    @property
    def embedding_name(self) -> str:
        """F's name, recorded by a store and checked on every open."""
        return type(self.embedding).__name__

    def distorter(self, enrolment: Enrolment, key: Key | None = None) -> Distorter:
        """A :class:`Distorter` on these networks; keyed ones take ``key`` (default: ``enrolment.key``'s)."""
        if self.transform is None and (enrolment.key is not None or key is not None):  # never drop a key silently
            given = enrolment.key or "a key"
            raise ValueError(
                f"a key file ({given}) was given, but the model is not keyed: give a keyed carrier's "
                "checkpoint or --model.keyed (a keyed model file of distortion fit-transform)"
            )
        return Distorter(self.embedding, self.generator, enrolment, transform=self.transform, key=key)


@dataclass
class Deployment:
    """What a loaded model gives a verb: the :class:`Distorter`, F's name (recorded by a store) and the operating
    threshold calibrated on training people (``None`` where the source holds none)."""

    distorter: Distorter
    embedding_name: str
    threshold: float | None


def load_model(source: ModelSource, device: torch.device) -> LoadedModel:
    """Load ``source``'s networks onto ``device``, each file read once. A keyed checkpoint or ``source.keyed``
    brings a transform; the threshold is the keyed model file's, else the keyed checkpoint's."""
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
    return LoadedModel(f, generator, transform.to(device) if transform is not None else None, threshold)


def load_deployment(source: ModelSource, device: torch.device, enrolment: Enrolment = Enrolment()) -> Deployment:
    """:func:`load_model` and its :class:`Distorter` under the key of ``enrolment.key`` (or
    ``$DISTORTION_KEY_FILE``) where the model is keyed. A key file given for a model that is not keyed is refused."""
    model = load_model(source, device)
    return Deployment(model.distorter(enrolment), model.embedding_name, model.threshold)
