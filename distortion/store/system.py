"""A biometric system on a store: photos in, carriers and templates stored, decisions out.

:class:`BiometricSystem` aligns a photo the way F expects, makes its carrier (a G, or F alone refined
from noise; keyed when a keyed model and key are given), and stores the carrier as PNG with its template
F(stored). A probe photo is compared as ``T_k(F(probe))`` (or F(probe) unkeyed) with the stored templates,
both where the keyed matcher compares them (:meth:`~distortion.deployment.distorter.Distorter.matched`).
Photos are never stored. Every refusal (no face, a corrupt file, an unknown id, a duplicate, a wrong
key, another F) raises before anything is written.

Two modes, fixed when a store is made (docs/keyed.md has the threat model of each):

- the system key (``tokens=False``): every carrier under the one transform of the key; 1:1, 1:N and the
  duplicate check at enrolment;
- a person's token beside it (``tokens=True``): enrolment issues each person a token (128 bits, returned once,
  never stored) and draws their carriers under ``T_{k,t}`` (:mod:`distortion.deployment.personal_templates`);
  ``verify`` needs the token. Records of different people are then unrelated without their tokens, so there is
  no 1:N search and no duplicate check in this mode; a lost token is a revocation and a re-enrolment.

The duplicate check compares a newcomer's carriers with the stored carriers (like with like) at a threshold of
its own (:meth:`BiometricSystem.duplicate_threshold`): a false-positive identification rate of ``DUPLICATE_FPIR``
for a search of the gallery's size, calibrated on the store's own people and kept in step as it grows. A gallery
too small to calibrate it compares the newcomer's keyed photos with the stored carriers at the 1:1 threshold,
the comparison that threshold was calibrated for.
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
from distortion.deployment.personal_templates import PersonalTransform
from distortion.deployment.tokens import Token, generate_token
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
DUPLICATE_FPIR = 0.01  # the share of distinct newcomers the duplicate check may call duplicates
CALIBRATION_PEOPLE = 1000  # stored people whose nearest other calibrates the duplicate check
RECALIBRATE_GROWTH = 1.05  # the duplicate threshold is recalibrated when the gallery has grown by this factor


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
        tokens: make a new store in the token mode (module docstring); ``None``: an existing store's mode (a new
            store: the system key alone). A mode that contradicts an existing store's is refused.
    """

    def __init__(
        self, url: str, distorter: Distorter, embedding_name: str, threshold: float, tokens: bool | None = None
    ) -> None:
        self.distorter = distorter
        self.face = require_face_backbone(distorter.embedding, "a biometric store")
        if tokens and distorter.transform is None:
            raise ValueError(
                "a store with tokens keys each person's carriers by the system key and their token: "
                "give a keyed model (a keyed carrier's checkpoint or --model.keyed) and its key"
            )
        if tokens:
            PersonalTransform(distorter.transform)  # a transform that is not a rotation is refused before any write
        transform = distorter.transform.identity if distorter.transform is not None else None
        meta = StoreMeta(embedding_name, self.face.embedding_dim, transform, distorter.fingerprint, threshold,
                         bool(tokens))  # fmt: skip
        self.store = open_store(url, meta)
        if distorter.key is not None and self.store.meta.fingerprint is not None:
            distorter.key.check(self.store.meta.fingerprint, f"the store {url}")
        elif (distorter.key is None) != (self.store.meta.fingerprint is None):
            keyed = self.store.meta.fingerprint is not None
            advice = "give its key and keyed model" if keyed else "open it without a key"
            raise ValueError(f"the store {url} is {'' if keyed else 'not '}keyed: {advice}")
        self.tokens = self.store.meta.tokens
        if tokens is not None and tokens != self.tokens:
            made = "with" if self.tokens else "without"
            raise ValueError(f"the store {url} was made {made} tokens: open it {made} them (--tokens {self.tokens})")
        self.threshold = self.store.meta.threshold
        self._duplicate_threshold: tuple[int, float] | None = None  # (gallery size, threshold) of the last calibration

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

    def matcher(self, token: Token | None = None) -> Distorter:
        """The distorter that makes and compares a person's templates: the system's, or with a token the person's
        own. A token on a store without tokens, or none on a store with them, is refused."""
        if self.tokens and token is None:
            raise ValueError("this store keeps each person's carriers under their own token: give the token issued "
                             "at enrolment (--token FILE or $DISTORTION_TOKEN)")  # fmt: skip
        if not self.tokens and token is not None:
            raise ValueError("this store has no tokens (its carriers are under the system key alone): give no token")
        return self.distorter.personal(token) if token is not None else self.distorter

    def carriers(self, x: torch.Tensor, keyed: np.ndarray, batch_size: int = 32) -> tuple[torch.Tensor, np.ndarray]:
        """The stored images ``(N, 3, S, S)`` of chips ``x`` drawn for their keyed templates ``keyed`` (:meth:`probe`;
        rows may be different people's, each under their own token), and their templates F(stored)."""
        stored, templates = [], []
        target = torch.from_numpy(keyed)
        with torch.no_grad():
            for xb, tb in zip(x.split(batch_size), target.split(batch_size)):
                carriers = self.distorter.draw(xb.to(self.device), tb.to(self.device))
                stored.append(carriers.cpu())
                templates.append(self.distorter.embedding(carriers).float().cpu())
        return torch.cat(stored), torch.cat(templates).numpy()

    def probe(self, emb: torch.Tensor, token: Token | None = None) -> np.ndarray:
        """What the matcher compares stored templates with, for F of fresh photos: ``T_k(F(x))`` (``T_{k,t}`` with
        the person's token; F(x) unkeyed)."""
        with torch.no_grad():
            return self.matcher(token).probe(emb.to(self.device).float()).float().cpu().numpy()

    def probes(self, photos: Sequence[str | Path], token: Token | None = None) -> np.ndarray:
        """:meth:`probe` of photos."""
        return self.probe(self.embed(self.align(photos)), token)

    def _matched(self, templates: torch.Tensor) -> torch.Tensor:
        return self.distorter.matched(templates.to(self.device)).cpu()

    def _no_search(self, what: str) -> None:
        if self.tokens:
            raise ValueError(f"{what} searches the store, and a store with tokens cannot compare a probe with anyone "
                             "whose token it lacks: verify a person with their id and token")  # fmt: skip

    @property
    def rescore(self) -> Rescore | None:
        """How a search scores the index's shortlist: ``None`` when the matcher compares stored templates as
        they are (:attr:`TemplateTransform.matches_stored`), the index's own scores then."""
        transform = self.distorter.transform
        return None if transform is None or transform.matches_stored else partial(matched_scores, self._matched)

    def search(self, probes: np.ndarray, top: int) -> list[list[tuple[str, float]]]:
        """The ``top`` people of each keyed probe, best first, scored as the matcher scores."""
        self._no_search("identification")
        return self.store.search(probes, top, self.rescore)

    def identify_probe(self, probe: np.ndarray, top: int = 5) -> dict:
        """``{"top": [{"id", "score"}, ...], "match": id or None, "threshold"}`` for one keyed probe ``(D,)``."""
        hits = self.search(probe[None], top)[0]
        match = hits[0][0] if hits and hits[0][1] >= self.threshold else None
        return {"top": [{"id": p, "score": s} for p, s in hits], "match": match, "threshold": self.threshold}

    def identify(self, photo: str | Path, top: int = 5) -> dict:
        """:meth:`identify_probe` of one photo."""
        self._no_search("identification")
        return self.identify_probe(self.probes([photo])[0], top)

    def verify_probe(self, person: str, probe: np.ndarray, token: Token | None = None) -> tuple[bool, float]:
        """Whether keyed ``probe`` ``(D,)`` (:meth:`probe`, with the same ``token``) is ``person`` (the best score
        over their live records), and the score."""
        matcher = self.matcher(token)
        templates = self.store.templates(person)
        if len(templates) == 0:
            raise UnknownIdError(f"no live record for id {person!r} in this store")

        def matched(t: torch.Tensor) -> torch.Tensor:
            return matcher.matched(t.to(self.device)).cpu()

        score = float(matched_scores(matched, probe, templates).max())
        return score >= self.threshold, score

    def verify(self, person: str, photo: str | Path, token: Token | None = None) -> tuple[bool, float]:
        """:meth:`verify_probe` of one photo (with the person's ``token`` in a store with tokens)."""
        return self.verify_probe(person, self.probes([photo], token)[0], token)

    def enrol(self, person: str, photos: Sequence[str | Path]) -> dict:
        """Align, check for duplicates, make the carriers and store them with their templates, in one transaction.
        In a store with tokens the result holds the person's new ``token``, which nothing keeps but the caller."""
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
        tokens = [generate_token() if self.tokens else None for _ in owners]
        rows = np.cumsum([0] + [len(c) for c in chips])
        probes = np.concatenate([self.probe(emb[a:b], token) for a, b, token in zip(rows[:-1], rows[1:], tokens)])
        stored_all, templates_all = self.carriers(x, probes, batch_size)
        for person, a, b, token in zip(owners, rows[:-1], rows[1:], tokens):
            try:
                results.append(self.store_person(person, stored_all[a:b], templates_all[a:b], probes[a:b],
                                                 check_duplicates, token))  # fmt: skip
            except DuplicateError as error:
                if strict:
                    raise
                results.append({"id": person, "refused": str(error)})
        return results

    def store_person(
        self, person: str, stored: torch.Tensor, templates: np.ndarray, probes: np.ndarray,
        check_duplicates: bool = True, token: Token | None = None,
    ) -> dict:  # fmt: skip
        """Store one person's carriers ``stored`` ``(N, 3, S, S)`` with their ``templates`` in one transaction, after
        the duplicate check on those templates and the photos' keyed ``probes`` (:meth:`duplicate`:
        :class:`DuplicateError`, nothing stored; not in a store with tokens, whose ``token`` the carriers were drawn
        under and the result returns)."""
        check_id(person)
        self.matcher(token)  # a token where there are none, or none where there are, is refused
        duplicate = self.duplicate(person, templates, probes) if check_duplicates and not self.tokens else None
        if duplicate is not None:
            raise DuplicateError(
                f"this face is already enrolled as {duplicate[0]!r} (score {duplicate[1]:.3f} >= the duplicate "
                f"threshold {duplicate[2]:.3f}); nothing was stored"
            )
        carriers = [_png(chip) for chip in tensor_to_chips(stored)]
        ids = self.store.enrol(person, carriers, templates, self.distorter.fingerprint)
        result = {"id": person, "records": ids, "fingerprint": self.distorter.fingerprint}
        return result | ({"token": token} if token is not None else {})

    def nearest_other(self, person: str, templates: np.ndarray) -> tuple[str, float] | None:
        """The best-scoring person other than ``person`` for any of ``templates`` (keyed probes, or F of carriers),
        with the score; ``None`` in a store that holds nobody else."""
        hits = (hit for found in self.search(templates, 2) for hit in found if hit[0] != person)
        return max(hits, key=lambda hit: hit[1], default=None)

    def duplicate_threshold(self) -> float | None:
        """The duplicate check's threshold: the score that ``DUPLICATE_FPIR`` of the stored people's carriers reach
        against their nearest other stored person (a search of the gallery's size, carriers against carriers),
        never below the 1:1 threshold; ``None`` below ``1 / DUPLICATE_FPIR`` people, where no such quantile exists
        (:meth:`duplicate` then compares photos with carriers at the 1:1 threshold). Recalibrated on up to
        ``CALIBRATION_PEOPLE`` stored people whenever the gallery has grown by
        ``RECALIBRATE_GROWTH`` since the last time."""
        people = sorted(p["id"] for p in self.store.people() if p["records"] > p["revoked"])
        last = self._duplicate_threshold
        if last is not None and len(people) <= last[0] * RECALIBRATE_GROWTH:
            return last[1]
        if len(people) < 1 / DUPLICATE_FPIR:
            return None
        rng = np.random.default_rng(len(people))
        sample = rng.choice(len(people), min(len(people), CALIBRATION_PEOPLE), replace=False)
        nearest = [self.nearest_other(people[i], self.store.templates(people[i])) for i in sample]
        scores = np.sort([hit[1] for hit in nearest if hit is not None])
        rank = min(len(scores) - 1, int(np.ceil((1 - DUPLICATE_FPIR) * len(scores))))
        threshold = max(self.threshold, float(np.nextafter(scores[rank], np.inf)))
        self._duplicate_threshold = (len(people), threshold)
        return threshold

    def duplicate(self, person: str, carriers: np.ndarray, probes: np.ndarray) -> tuple[str, float, float] | None:
        """The other person a newcomer's face is already enrolled as, with the score and the threshold it reached,
        else None: :meth:`nearest_other` of the newcomer's ``carriers`` (F of them) at :meth:`duplicate_threshold`;
        in a gallery too small to calibrate that, of the photos' keyed ``probes`` at the 1:1 threshold (two
        carriers are closer than a carrier and a photo, so carriers of distinct people would reach the 1:1
        threshold far more often than its false-accept rate)."""
        calibrated = self.duplicate_threshold()
        templates, threshold = (carriers, calibrated) if calibrated is not None else (probes, self.threshold)
        other = self.nearest_other(person, templates)
        return (*other, threshold) if other is not None and other[1] >= threshold else None

    def revoke(self, person: str) -> int:
        revoked = self.store.revoke(person)
        if not revoked:
            raise UnknownIdError(f"no live record for id {person!r} in this store")
        return revoked

    def people(self) -> list[dict]:
        return self.store.people()


def open_system(
    store: str, model: ModelSource, refine_steps: int = 0, key: str | None = None, threshold: float | None = None,
    device: str = "auto", seed: int = 0, tokens: bool | None = None,
) -> BiometricSystem:  # fmt: skip
    """The :class:`BiometricSystem` the verbs open: its carriers from ``model`` (a G, or F alone refined
    ``refine_steps`` from noise; keyed by a keyed checkpoint or ``model.keyed``, with ``key``); a new store's
    threshold is ``threshold``, else the model's calibrated one, else dlib's 0.6."""
    torch.manual_seed(seed)
    enrolment = Enrolment(refine_steps, storage="png", key=key)
    deployment = load_deployment(model, resolve_device(device), enrolment)
    threshold = threshold or deployment.threshold or DEFAULT_THRESHOLD
    return BiometricSystem(store, deployment.distorter, deployment.embedding_name, threshold, tokens)
