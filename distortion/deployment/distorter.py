"""What a deployment stores for a photo x: G(x, F(x)), optionally refined against F, as it comes back from
storage, and the template F(stored) it keeps. The way from a photo to what is stored is written here once:
:meth:`Distorter.embed` for a batch, :func:`embed_batches` for a stream of them; the LightningModule's evaluation,
the store, the calibration of the threshold, ``evaluate``, ``privacy``, ``distort`` and the tools call them."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key, load_key
from distortion.deployment.personal_templates import PersonalTransform
from distortion.deployment.refinement import noise_images, refine
from distortion.deployment.tokens import Token, person_key
from distortion.imaging.storage import store

__all__ = ["Distorter", "EmbeddedBatch", "embed_batches"]


@dataclass
class EmbeddedBatch:
    """One batch on its way into the store, on the distorter's device: originals ``x``, what is ``stored`` of them
    (``None`` without a distorter), and F of both (float32)."""

    x: Tensor
    stored: Tensor | None
    emb_x: Tensor
    emb_stored: Tensor | None


class Distorter:
    """``stored(x) = store(refine(G(x, target) or noise, target), storage)`` with ``target = F(x)``, or
    ``T_k(F(x))`` for a keyed store (``transform`` and a key): then G must be one that reads only the
    template (a carrier) or refinement starts from noise, and the matcher keys every probe (:meth:`probe`).

    Args:
        embedding: the frozen F (the target and the refinement's guide).
        generator: G; ``None`` starts every image from pure noise (then ``enrolment.refine_steps`` must be > 0).
        enrolment: refinement, storage and the key file (:class:`~distortion.deployment.enrolment.Enrolment`).
        transform: a fitted keyed transform (:mod:`distortion.deployment.keyed_templates`): the store is keyed.
        key: the deployment's secret key; default: the key of ``enrolment.key`` (or of the environment).
        token: a person's token (:mod:`distortion.deployment.tokens`): templates are then the person's own,
            ``T_{k,t}`` (:class:`~distortion.deployment.personal_templates.PersonalTransform`); :meth:`personal` makes
            one person's distorter from the system's.

    Noise (the start without G, and a carrier generator's own) comes from the global random state,
    so ``torch.manual_seed`` makes a run repeatable. A plain object holding references: the networks
    stay registered (and checkpointed) where they belong.
    """

    def __init__(
        self,
        embedding: nn.Module,
        generator: nn.Module | None = None,
        enrolment: Enrolment = Enrolment(),
        transform: TemplateTransform | None = None,
        key: Key | None = None,
        token: Token | None = None,
    ) -> None:
        if generator is None and enrolment.refine_steps < 1:
            raise ValueError("without a G, images start from noise: give refine_steps >= 1")
        if transform is None and key is not None:
            raise ValueError("a key without a transform: a keyed store needs a fitted transform too")
        if transform is not None and generator is not None and generator.reads_image:
            name = type(generator).__name__
            raise ValueError(f"a keyed store draws T_k(F(x)): it needs a generator that reads only the template "
                             f"(a carrier) or refinement from noise, not {name}, which reads x")  # fmt: skip
        if transform is None and token is not None:
            raise ValueError("a person's token without a keyed model: tokens key a keyed store's transform")
        if transform is not None:
            transform.check_fitted()
            key = key if key is not None else load_key(enrolment.key)
        self.transform, self.key, self.token = transform, key, token
        self.embedding, self.generator, self.enrolment = embedding, generator, enrolment
        self._templates = (PersonalTransform(transform), person_key(key, token)) if token is not None else None

    def personal(self, token: Token) -> Distorter:
        """This distorter for the person holding ``token``: the same networks and system key, their own templates."""
        if self.transform is None:
            raise ValueError("a person's token without a keyed model: tokens key a keyed store's transform")
        personal = copy.copy(self)
        personal.token = token
        personal._templates = (PersonalTransform(self.transform), person_key(self.key, token))
        return personal

    @property
    def is_identity_of_g(self) -> bool:
        """Whether the stored image is G's output unchanged (no refinement, no storage, no key)."""
        e = self.enrolment
        return self.generator is not None and e.refine_steps == 0 and e.storage == "none" and not self.keyed

    @property
    def keyed(self) -> bool:
        return self.transform is not None

    @property
    def fingerprint(self) -> str | None:
        """The key's fingerprint (recorded beside every carrier), ``None`` when not keyed."""
        return self.key.fingerprint if self.key is not None else None

    def probe(self, emb: Tensor) -> Tensor:
        """What the matcher compares F(stored) with, for a fresh photo's F(x): ``T_k(F(x))`` (``T_{k,t}`` with a
        token), or F(x) unkeyed."""
        if self._templates is not None:
            transform, key = self._templates
            return transform(emb, key)
        return self.transform(emb, self.key) if self.transform is not None else emb

    def matched(self, templates: Tensor) -> Tensor:
        """Templates as the matcher compares them: F(stored) and :meth:`probe`'s output both go through this
        before any distance (:meth:`TemplateTransform.matched`; unchanged unkeyed)."""
        if self._templates is not None:
            transform, key = self._templates
            return transform.matched(templates, key)
        return self.transform.matched(templates, self.key) if self.transform is not None else templates

    def finish(self, x: Tensor, start: Tensor, emb: Tensor | None = None) -> Tensor:
        """Refine ``start`` (G's output for ``x``) towards the target of ``emb`` = F(x) (computed when
        ``None``), then store it."""
        if emb is None and self.enrolment.refine_steps:
            with torch.no_grad():
                emb = self.embedding(x)
        return self.settle(start, self.probe(emb.float()) if emb is not None else None)

    def settle(self, start: Tensor, target: Tensor | None) -> Tensor:
        """Refine ``start`` towards the keyed ``target`` (when refining), then store it."""
        e = self.enrolment
        if e.refine_steps:
            start = refine(start, self.embedding, target, e.refine_steps, e.refine_lr, e.refine_robust,
                           e.refine_precision)  # fmt: skip
        return store(start.float().clamp(0, 1), e.storage)

    def draw(self, x: Tensor, target: Tensor) -> Tensor:
        """The stored images for originals ``x`` whose keyed templates (:meth:`probe`'s output) are ``target``:
        rows may belong to different people, each under their own key (what a store's batch enrolment does)."""
        with torch.no_grad():
            start = self.generator(x, target) if self.generator is not None else noise_images(x.shape, x.device)
        return self.settle(start, target)

    def embed(self, x: Tensor, emb_x: Tensor | None = None, start: Tensor | None = None,
              emb_start: Tensor | None = None) -> EmbeddedBatch:  # fmt: skip
        """x, F(x), the stored image and its template F(stored) for originals ``x`` ``(B, C, H, W)`` in ``[0, 1]``.

        ``emb_x`` (F(x)) and ``start`` (G's output) are used when the caller has them already (the training
        loss computes both); ``emb_start`` (F(start)) is then the template when nothing changes G's output
        (:attr:`is_identity_of_g`)."""
        with torch.no_grad():
            emb_x = self.embedding(x).float() if emb_x is None else emb_x.float()
        if start is None:
            stored = self(x, target=emb_x)
        elif self.is_identity_of_g and emb_start is not None:
            return EmbeddedBatch(x, start, emb_x, emb_start.float())
        else:
            stored = self.finish(x, start, emb_x)
        with torch.no_grad():
            return EmbeddedBatch(x, stored, emb_x, self.embedding(stored).float())

    def __call__(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """The stored images for originals ``x`` ``(B, C, H, W)`` in ``[0, 1]``; ``target`` is F(x) when
        the caller has it already."""
        with torch.no_grad():
            if target is None:
                target = self.embedding(x).float()
            keyed = self.probe(target)
        return self.draw(x, keyed)


def embed_batches(
    batches: Iterable[Tensor],
    embedding: nn.Module,
    device: torch.device,
    distorter: Distorter | None = None,
    desc: str = "embed",
    progress: bool = True,
) -> Iterator[EmbeddedBatch]:
    """For each batch of originals ``(B, C, H, W)`` in ``[0, 1]`` (on any device): F(x), and with a
    ``distorter`` (:meth:`Distorter.embed`) the stored image and F of it, all on ``device``."""
    for x in tqdm(batches, desc=desc, unit="batch", disable=not progress):
        x = x.to(device, non_blocking=True).float()
        if distorter is not None:
            yield distorter.embed(x)
            continue
        with torch.no_grad():
            yield EmbeddedBatch(x, None, embedding(x).float(), None)
