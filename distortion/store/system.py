"""A biometric system on a store: photos in, carriers and templates stored, decisions out.

:class:`BiometricSystem` aligns a photo the way F expects, makes its carrier (a G, or F alone refined
from noise; keyed when a keyed model and key are given), and stores the carrier as PNG with its template
F(stored). A probe photo is compared as ``T_k(F(probe))`` (or F(probe) unkeyed) with the stored templates,
both where the keyed matcher compares them (:meth:`~distortion.deployment.distorter.Distorter.matched`).
Photos are never stored. Every refusal (no face, a corrupt file, an unknown id, a duplicate, a wrong
key, another F) raises before anything is written.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from distortion.backbones import require_face_backbone
from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.faces.alignment import (
    DlibAligner,
    ImageReadError,
    MTCNNAligner,
    NoFaceError,
    align_photo,
    make_aligner,
)
from distortion.imaging.image_io import chips_to_tensor, tensor_to_chips
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.verification import pair_scores
from distortion.runtime import resolve_device
from distortion.store.backends import DuplicateError, Rescore, UnknownIdError, open_store
from distortion.store.records import StoreMeta

__all__ = ["BiometricSystem", "NoFaceError", "align_photos", "check_id", "embed_chips", "matched_scores", "open_system"]

DEFAULT_THRESHOLD = 1 / (1 + 0.6)  # dlib's distance 0.6 as a score, for stores without a calibrated threshold


def _png(chip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(chip.squeeze(-1) if chip.shape[-1] == 1 else chip).save(buffer, format="PNG")
    return buffer.getvalue()


def align_photos(
    photos: Sequence[str | Path | BinaryIO], aligner: DlibAligner | MTCNNAligner, max_pixels: int | None = None
) -> torch.Tensor:
    """Aligned chips ``(N, 3, S, S)`` of ``photos`` (paths, or open files with a ``name``); a corrupt file, one of
    more than ``max_pixels``, or a photo without a face raises, naming the photo."""
    chips = []
    for photo in photos:
        try:
            chips.append(align_photo(photo, aligner, require_face=True, max_pixels=max_pixels).chip)
        except (ImageReadError, NoFaceError) as error:
            raise type(error)(f"{getattr(photo, 'name', photo)}: {error}") from None
    return chips_to_tensor(np.stack(chips))


def embed_chips(embedding: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """F of aligned chips ``(N, 3, S, S)`` on F's device, float32 on the CPU."""
    with torch.no_grad():
        return embedding(x.to(next(embedding.parameters()).device)).float().cpu()


def check_id(person: str) -> None:
    """A person's id is 1 to 512 characters."""
    if not isinstance(person, str) or not person or len(person) > 512:
        raise ValueError(f"an id is 1 to 512 characters, got {person!r}")


def matched_scores(
    matched: Callable[[torch.Tensor], torch.Tensor], probe: np.ndarray, templates: np.ndarray
) -> np.ndarray:
    """Scores of stored ``templates`` ``(N, D)`` against one keyed ``probe`` ``(D,)``, both first put where the
    matcher compares them (``matched``: :meth:`Distorter.matched`)."""
    both = torch.from_numpy(np.concatenate([templates, probe[None]]).astype(np.float32))
    placed = matched(both)
    return pair_scores(placed[:-1], placed[-1:]).numpy()


class BiometricSystem:
    """Enrol, verify, identify and revoke people by their carriers in the store at ``url``.

    Args:
        url: the store (:func:`~distortion.store.backends.open_store`).
        distorter: makes carriers; its key (if any) must be the store's.
        embedding_name: F's name, recorded in the store and checked on every open (so is the transform's
            identity: the store refuses another fit of the transform).
        threshold: the operating threshold (a score) for a new store; an existing store keeps its own.
    """

    def __init__(self, url: str, distorter: Distorter, embedding_name: str, threshold: float) -> None:
        self.distorter = distorter
        self.face = require_face_backbone(distorter.embedding, "a biometric store")
        transform = distorter.transform.identity if distorter.transform is not None else None
        meta = StoreMeta(embedding_name, self.face.embedding_dim, transform, distorter.fingerprint, threshold)
        self.store = open_store(url, meta)
        if distorter.key is not None and self.store.meta.fingerprint is not None:
            distorter.key.check(self.store.meta.fingerprint, f"the store {url}")
        elif (distorter.key is None) != (self.store.meta.fingerprint is None):
            keyed = self.store.meta.fingerprint is not None
            advice = "give its key and keyed model" if keyed else "open it without a key"
            raise ValueError(f"the store {url} is {'' if keyed else 'not '}keyed: {advice}")
        self.threshold = self.store.meta.threshold

    def close(self) -> None:
        self.store.close()

    @cached_property
    def aligner(self) -> DlibAligner | MTCNNAligner:
        """The aligner F expects, loaded at the first :meth:`align` (the service aligns with its own, so its tenants'
        stores load none)."""
        return make_aligner(self.face.aligner, fast=True)

    @property
    def device(self) -> torch.device:
        return next(self.distorter.embedding.parameters()).device

    def align(self, photos: Sequence[str | Path | BinaryIO]) -> torch.Tensor:
        """:func:`align_photos` with this store's aligner."""
        return align_photos(photos, self.aligner)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`embed_chips` through this store's F."""
        return embed_chips(self.distorter.embedding, x)

    def carriers(self, x: torch.Tensor, emb: torch.Tensor, batch_size: int = 32) -> tuple[torch.Tensor, np.ndarray]:
        """The stored images ``(N, 3, S, S)`` of chips ``x`` whose F is ``emb``, and their templates F(stored)."""
        stored, templates = [], []
        with torch.no_grad():
            for xb, eb in zip(x.split(batch_size), emb.split(batch_size)):
                carriers = self.distorter(xb.to(self.device), target=eb.to(self.device))
                stored.append(carriers.cpu())
                templates.append(self.distorter.embedding(carriers).float().cpu())
        return torch.cat(stored), torch.cat(templates).numpy()

    def probe(self, emb: torch.Tensor) -> np.ndarray:
        """What the matcher compares stored templates with, for F of fresh photos: ``T_k(F(x))`` (F(x) unkeyed)."""
        with torch.no_grad():
            return self.distorter.probe(emb.to(self.device).float()).float().cpu().numpy()

    def probes(self, photos: Sequence[str | Path]) -> np.ndarray:
        """:meth:`probe` of photos."""
        return self.probe(self.embed(self.align(photos)))

    def _matched(self, templates: torch.Tensor) -> torch.Tensor:
        return self.distorter.matched(templates.to(self.device)).cpu()

    @property
    def rescore(self) -> Rescore | None:
        """How a search scores the index's shortlist: ``None`` when the matcher compares stored templates as
        they are (:attr:`TemplateTransform.matches_stored`), the index's own scores then."""
        transform = self.distorter.transform
        return None if transform is None or transform.matches_stored else partial(matched_scores, self._matched)

    def search(self, probes: np.ndarray, top: int) -> list[list[tuple[str, float]]]:
        """The ``top`` people of each keyed probe, best first, scored as the matcher scores."""
        return self.store.search(probes, top, self.rescore)

    def identify_probe(self, probe: np.ndarray, top: int = 5) -> dict:
        """``{"top": [{"id", "score"}, ...], "match": id or None, "threshold"}`` for one keyed probe ``(D,)``."""
        hits = self.search(probe[None], top)[0]
        match = hits[0][0] if hits and hits[0][1] >= self.threshold else None
        return {"top": [{"id": p, "score": s} for p, s in hits], "match": match, "threshold": self.threshold}

    def identify(self, photo: str | Path, top: int = 5) -> dict:
        """:meth:`identify_probe` of one photo."""
        return self.identify_probe(self.probes([photo])[0], top)

    def verify_probe(self, person: str, probe: np.ndarray) -> tuple[bool, float]:
        """Whether keyed ``probe`` ``(D,)`` is ``person`` (the best score over their live records), and the score."""
        templates = self.store.templates(person)
        if len(templates) == 0:
            raise UnknownIdError(f"no live record for id {person!r} in this store")
        score = float(matched_scores(self._matched, probe, templates).max())
        return score >= self.threshold, score

    def verify(self, person: str, photo: str | Path) -> tuple[bool, float]:
        """:meth:`verify_probe` of one photo."""
        return self.verify_probe(person, self.probes([photo])[0])

    def enrol(self, person: str, photos: Sequence[str | Path]) -> dict:
        """Align, check for duplicates, make the carriers and store them with their templates, in one transaction."""
        return self.enrol_many({person: photos}, strict=True)[0]

    def enrol_many(
        self, people: Mapping[str, Sequence[str | Path]], batch_size: int = 32, strict: bool = False,
        check_duplicates: bool = True,
    ) -> list[dict]:  # fmt: skip
        """Enrol several people at once (F and the carriers in batches), each person in its own transaction.

        A person whose photos cannot be used, or whose face is already enrolled under another id, is refused
        (``strict``: raised, before anything of that person is written) and reported with the reason.
        ``check_duplicates=False`` skips the duplicate check (an import of people known to be distinct)."""
        for person in people:
            check_id(person)
        chips, owners, results = [], [], []
        for person, photos in people.items():
            try:
                chips.append(self.align(photos))
                owners.append(person)
            except (ImageReadError, NoFaceError) as error:
                if strict:
                    raise
                results.append({"id": person, "refused": str(error)})
        if not chips:
            return results
        x = torch.cat(chips)
        emb = torch.cat([self.embed(batch) for batch in x.split(batch_size)])
        stored_all, templates_all = self.carriers(x, emb, batch_size)
        probes = self.probe(emb)
        start = 0
        for person, person_chips in zip(owners, chips):
            rows = slice(start, start + len(person_chips))
            start += len(person_chips)
            try:
                results.append(self.store_person(person, stored_all[rows], templates_all[rows], probes[rows],
                                                 check_duplicates))  # fmt: skip
            except DuplicateError as error:
                if strict:
                    raise
                results.append({"id": person, "refused": str(error)})
        return results

    def store_person(
        self, person: str, stored: torch.Tensor, templates: np.ndarray, probes: np.ndarray,
        check_duplicates: bool = True,
    ) -> dict:  # fmt: skip
        """Store one person's carriers ``stored`` ``(N, 3, S, S)`` with their ``templates`` in one transaction,
        after the duplicate check on their photos' keyed ``probes`` (:class:`DuplicateError`, nothing stored)."""
        check_id(person)
        duplicate = self.duplicate(person, probes) if check_duplicates else None
        if duplicate is not None:
            raise DuplicateError(
                f"this face is already enrolled as {duplicate[0]!r} (score {duplicate[1]:.3f}); nothing was stored"
            )
        carriers = [_png(chip) for chip in tensor_to_chips(stored)]
        ids = self.store.enrol(person, carriers, templates, self.distorter.fingerprint)
        return {"id": person, "records": ids, "fingerprint": self.distorter.fingerprint}

    def nearest_other(self, person: str, probes: np.ndarray) -> tuple[str, float] | None:
        """The best-scoring person other than ``person`` for any of the keyed ``probes``, with the score;
        ``None`` in a store that holds nobody else."""
        hits = (hit for found in self.search(probes, 2) for hit in found if hit[0] != person)
        return max(hits, key=lambda hit: hit[1], default=None)

    def duplicate(self, person: str, probes: np.ndarray) -> tuple[str, float] | None:
        """:meth:`nearest_other` when it reaches the threshold (the face is enrolled under another id), else None."""
        other = self.nearest_other(person, probes)
        return other if other is not None and other[1] >= self.threshold else None

    def revoke(self, person: str) -> int:
        revoked = self.store.revoke(person)
        if not revoked:
            raise UnknownIdError(f"no live record for id {person!r} in this store")
        return revoked

    def people(self) -> list[dict]:
        return self.store.people()


def open_system(
    store: str, model: ModelSource, refine_steps: int = 0, key: str | None = None, threshold: float | None = None,
    device: str = "auto", seed: int = 0,
) -> BiometricSystem:  # fmt: skip
    """The :class:`BiometricSystem` the verbs open: its carriers from ``model`` (a G, or F alone refined
    ``refine_steps`` from noise; keyed by a keyed checkpoint or ``model.keyed``, with ``key``); a new store's
    threshold is ``threshold``, else the model's calibrated one, else dlib's 0.6."""
    torch.manual_seed(seed)
    enrolment = Enrolment(refine_steps, storage="png", key=key)
    deployment = load_deployment(model, resolve_device(device), enrolment)
    threshold = threshold or deployment.threshold or DEFAULT_THRESHOLD
    return BiometricSystem(store, deployment.distorter, deployment.embedding_name, threshold)
