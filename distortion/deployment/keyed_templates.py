"""Key-bound templates: a secret transform ``T_k`` of F's embedding space (ISO/IEC 24745 template protection).

A keyed store keeps an image whose template is ``T_k(F(x))`` and compares it with ``T_k(F(probe))``:

- the same key matches a person as F does (up to what the transform gives away);
- a stolen stored template presented as a probe becomes ``T_k(T_k(F(x)))`` and is rejected (replay);
- two keys give unrelated templates of one person (unlinkability), and a person is re-enrolled under
  a new key (renewability);
- without the key, the stored template says little of F(x) (irreversibility).

Each transform is fitted on training people only (:meth:`TemplateTransform.fit`: the mean and the
principal axes of F's embeddings, public numbers kept as buffers in checkpoints) and keyed at call time;
keys never enter the module. The matcher compares keyed templates where :meth:`TemplateTransform.matched`
puts them (as stored, unless a transform says otherwise). Outputs lie in F's space, on the top principal
axes around the mean, so that an image can carry them (a carrier generator, or refinement from noise).

- :class:`KeyedRotation`: ``mu + R_k (e - mu)``: distance-preserving, the same accuracy as F; falls to
  covariance alignment and to known pairs.
- :class:`WhitenedRotation`: the top ``components`` principal coordinates whitened, then rotated by a
  secret orthogonal ``R_k``: isotropic, so the covariance gives nothing to align. The matcher, who holds
  the key, undoes it before comparing (:meth:`TemplateTransform.matched`; ``compare="unkeyed"``, the
  default): F's own distance on the kept axes, so whitening costs no accuracy.
- :class:`DiscriminantRotation`: as the whitened rotation, on the most discriminant axes (LDA) instead of
  the strongest ones: isotropic too, and better matching.
- :class:`SignProjection`: ``sign(P_k z)`` of the whitened coordinates ``z`` (BioHashing): many-to-one,
  the key cannot be solved for exactly from leaked pairs.
"""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import torch
from torch import Tensor, nn

from distortion.deployment.keys import Key, load_key

__all__ = [
    "TRANSFORMS",
    "DiscriminantRotation",
    "KeyedRotation",
    "SignProjection",
    "TemplateTransform",
    "evaluation_key",
    "WhitenedRotation",
    "make_transform",
    "random_key",
]

SPAN_TOLERANCE = 1e-4
"""A principal axis whose variance is below this share of the strongest one is one F's embeddings do not span."""


def random_key(generator: torch.Generator | None = None) -> Key:
    """A throw-away key from torch's random state (training draws one per batch; never a deployment key)."""
    return Key(bytes(torch.randint(0, 256, (32,), generator=generator, dtype=torch.uint8).tolist()))


def evaluation_key(key_file: str | None) -> Key:
    """The key a training run validates and tests under: the key file's, or a fixed throw-away key (seed 0), so
    that no run needs a secret to be scored."""
    return load_key(key_file) if key_file is not None else random_key(torch.Generator().manual_seed(0))


def keyed_orthogonal(key: Key, label: str, size: int) -> Tensor:
    """A secret ``(size, size)`` rotation, uniform over the orthogonal group (QR of a Gaussian, signs fixed)."""
    gaussian = key.rng(label).standard_normal((size, size))
    q, r = np.linalg.qr(gaussian)
    return torch.from_numpy(q * np.sign(np.diag(r)))


class TemplateTransform(nn.Module):
    """The fitted, public half of ``T_k``: F's mean and principal axes (``components`` of them read); subclasses key it.

    Args:
        embedding_dim: F's embedding size D.
        components: principal axes kept (``0``: all D).
    """

    label = "transform"
    whitens = True  # whether the kept axes are scaled to unit variance (see :meth:`check_drawable`)
    rotates = False  # whether the keyed coordinates are a keyed rotation of key-free ones (a person's token keys it)

    def __init__(self, embedding_dim: int, components: int = 0) -> None:
        super().__init__()
        components = components or embedding_dim
        if not 1 <= components <= embedding_dim:
            raise ValueError(f"components must lie in [1, {embedding_dim}] (or 0 for all), got {components}")
        self.embedding_dim, self.components = embedding_dim, components
        self.register_buffer("mean", torch.zeros(embedding_dim, dtype=torch.float64))
        self.register_buffer("basis", torch.eye(embedding_dim, dtype=torch.float64))  # every axis, strongest first
        self.register_buffer("variances", torch.ones(embedding_dim, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def settings(self) -> dict[str, int | str]:
        """The constructor's arguments of this transform (every subclass keeps each as an attribute of its name): what
        a keyed model file stores to build it again (:func:`make_transform`)."""
        parameters = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in parameters if name != "self"}

    @torch.no_grad()
    def fit(self, embeddings: Tensor, labels: Tensor | None = None) -> TemplateTransform:
        """Fit the mean and principal axes on ``(N, D)`` embeddings of training people (N > components);
        ``labels`` (one person per row) are read by transforms that need them."""
        e = embeddings.detach().double().cpu()
        if e.ndim != 2 or e.shape[1] != self.embedding_dim or len(e) <= self.components:
            raise ValueError(f"fit needs (N, {self.embedding_dim}) embeddings with N > {self.components}, got "
                             f"{tuple(e.shape)}")  # fmt: skip
        mean = e.mean(0)
        values, vectors = torch.linalg.eigh(torch.cov((e - mean).T))
        order = torch.argsort(values, descending=True)
        self.mean.copy_(mean)
        self.basis.copy_(vectors[:, order])
        self.variances.copy_(values[order].clamp_min(1e-12))
        self.fitted.fill_(True)
        return self

    @property
    def identity(self) -> str:
        """``<label>:<12 hex>``: names this fitted transform (a hash of its settings and buffers), so that a
        store made with one fit or matcher refuses another (their scores do not compare)."""
        digest = hashlib.sha256((self.label + self.extra_repr()).encode())
        for name, buffer in sorted(self.state_dict().items()):
            digest.update(name.encode() + buffer.detach().cpu().double().numpy().tobytes())
        return f"{self.label}:{digest.hexdigest()[:12]}"

    def check_fitted(self) -> None:
        if not bool(self.fitted):
            raise RuntimeError(f"{type(self).__name__} is not fitted: fit it on training people's embeddings first")

    @property
    def spanned(self) -> int:
        """The principal axes F's training embeddings vary along (variance >= ``SPAN_TOLERANCE`` of the strongest)."""
        self.check_fitted()
        return int((self.variances >= SPAN_TOLERANCE * self.variances[0]).sum())

    def check_drawable(self) -> None:
        """Raise when an image could not carry this transform's templates: whitening an axis F does not span
        (dlib's ResNet spans about 77 of its 128) gives its numerical noise unit variance, a target no image
        reaches. Exact templates still match there (the matcher undoes the whitening); carriers do not."""
        if self.whitens and self.components > self.spanned:
            raise ValueError(f"{type(self).__name__} whitens {self.components} axes, but F's training embeddings "
                             f"span only {self.spanned} (variance >= {SPAN_TOLERANCE:g} of the strongest axis): "
                             f"no carrier can draw the others; use components <= {self.spanned}")  # fmt: skip

    @property
    def scale(self) -> Tensor:
        """The spread of keyed coordinates: the root mean variance of the kept axes (F's own scale)."""
        return self.variances[: self.components].mean().sqrt()

    def coordinates(self, emb: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, components)``: the principal coordinates, centred (float64)."""
        return (emb.double() - self.mean) @ self.basis[:, : self.components]

    def whitened(self, emb: Tensor) -> Tensor:
        """The principal coordinates divided by their standard deviations: unit variance each."""
        return self.coordinates(emb) / self.variances[: self.components].sqrt()

    def place(self, y: Tensor, like: Tensor) -> Tensor:
        """Keyed coordinates ``(B, m)`` back into F's space on the first ``m`` axes, as ``like``'s dtype."""
        return (self.mean + y @ self.basis[:, : y.shape[1]].T).to(like.dtype)

    def keyed(self, emb: Tensor, key: Key) -> Tensor:
        """``(B, D)`` -> keyed coordinates ``(B, m)`` (float64); what subclasses define."""
        raise NotImplementedError

    def forward(self, emb: Tensor, key: Key) -> Tensor:
        """``T_k(emb)``: ``(B, D)`` embeddings -> ``(B, D)`` keyed templates in F's space."""
        self.check_fitted()
        return self.place(self.keyed(emb, key), emb)

    @property
    def matches_stored(self) -> bool:
        """Whether the matcher compares the stored templates as they are (:meth:`matched` is the identity)."""
        return True

    def matched(self, templates: Tensor, key: Key) -> Tensor:
        """Keyed templates ``(B, D)`` (stored ones, keyed probes) as the matcher under ``key`` compares them,
        by Euclidean distance: as they are, here. Only the matcher holds the key, so only it can call this;
        what it returns is never stored."""
        return templates


class KeyedRotation(TemplateTransform):
    """``mu + R_k (e - mu)`` on the ``components`` principal axes (all by default): distances kept exactly."""

    label = "rotation"
    whitens = False
    rotates = True

    def keyed(self, emb: Tensor, key: Key) -> Tensor:
        rotation = keyed_orthogonal(key, self.label, self.components).to(emb.device)
        return self.coordinates(emb) @ rotation.T


class WhitenedRotation(TemplateTransform):
    """The top ``components`` principal coordinates whitened, rotated by ``R_k`` and given F's mean spread.

    Whitening makes the stored templates isotropic, so that two stores' covariances have no axes to align.
    How the matcher compares them (``compare``):

    - ``"unkeyed"`` (the default): the key and the whitening undone first (:meth:`matched`), i.e. F's own
      distance on the kept axes: whitening then costs no accuracy, and a carrier's error on weak axes counts
      as little as F's variation there;
    - ``"stored"``: as stored; weak axes then count as much as strong ones (fewer components: less noise).

    The stores hold the same isotropic templates either way; only the key holder can undo them.

    Args:
        compare: ``"stored"`` or ``"unkeyed"``.
    """

    label = "whitened_rotation"
    rotates = True
    COMPARE = ("stored", "unkeyed")

    def __init__(self, embedding_dim: int, components: int = 32, compare: str = "unkeyed") -> None:
        super().__init__(embedding_dim, components)
        if compare not in self.COMPARE:
            raise ValueError(f"compare must be one of {self.COMPARE}, got {compare!r}")
        self.compare = compare

    def rotation(self, key: Key, device: torch.device) -> Tensor:
        return keyed_orthogonal(key, self.label, self.components).to(device)

    def keyed(self, emb: Tensor, key: Key) -> Tensor:
        return self.scale * self.whitened(emb) @ self.rotation(key, emb.device).T

    @property
    def matches_stored(self) -> bool:
        return self.compare == "stored"

    def matched(self, templates: Tensor, key: Key) -> Tensor:
        """``"unkeyed"``: ``R_k^T`` and the whitening undone, F's principal coordinates placed back in F's space."""
        if self.compare == "stored":
            return templates
        self.check_fitted()
        whitened = self.coordinates(templates) @ self.rotation(key, templates.device) / self.scale
        return self.place(whitened * self.variances[: self.components].sqrt(), templates)

    def extra_repr(self) -> str:
        return f"components={self.components}, compare={self.compare!r}"


class SignProjection(TemplateTransform):
    """BioHashing: ``bits`` signs of secret random projections of the whitened coordinates, ``+-scale`` each.

    Many-to-one: a cone of embeddings shares each code, so leaked (embedding, code) pairs fix the
    projections only up to that cone. Comparing two codes by Euclidean distance is their Hamming distance.

    Args:
        bits: the code length (at most D); projections beyond ``components`` are not orthogonal.
    """

    label = "sign_projection"

    def __init__(self, embedding_dim: int, components: int = 64, bits: int = 64) -> None:
        super().__init__(embedding_dim, components)
        if not 1 <= bits <= embedding_dim:
            raise ValueError(f"bits must lie in [1, {embedding_dim}], got {bits}")
        self.bits = bits

    def keyed(self, emb: Tensor, key: Key) -> Tensor:
        size = max(self.bits, self.components)
        projection = keyed_orthogonal(key, self.label, size)[: self.bits, : self.components].to(emb.device)
        return self.scale * torch.sign(self.whitened(emb) @ projection.T)


class DiscriminantRotation(TemplateTransform):
    """The ``components`` most discriminant axes (linear discriminant analysis), whitened, rotated by ``R_k``.

    The axes solve ``S_w v = d S_t v`` (within-person and total covariance of the training people): in their
    frame the templates are isotropic (``S_t = I``, nothing to align), and the kept axes are those where a
    person varies least against the population (smallest ``d``), not the strongest ones (PCA): better
    matching at the same isotropy. Needs ``labels`` to fit.
    """

    label = "discriminant_rotation"
    rotates = True

    def __init__(self, embedding_dim: int, components: int = 48) -> None:
        super().__init__(embedding_dim, components)
        self.register_buffer("axes", torch.eye(embedding_dim, components, dtype=torch.float64))

    @torch.no_grad()
    def fit(self, embeddings: Tensor, labels: Tensor | None = None) -> DiscriminantRotation:
        if labels is None:
            raise ValueError("DiscriminantRotation is fitted on labelled embeddings (one person per row)")
        super().fit(embeddings)
        e, labels = embeddings.detach().double().cpu(), labels.cpu()
        _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        means = torch.zeros(len(counts), e.shape[1], dtype=e.dtype).index_add_(0, inverse, e) / counts[:, None]
        repeated = counts[inverse] >= 2
        deviations = (e - means[inverse])[repeated]
        if len(deviations) <= self.components:
            raise ValueError("DiscriminantRotation needs more images of people with two or more images")
        within = deviations.T @ deviations / len(deviations)
        total = torch.cov((e - e.mean(0)).T)
        # S_t^{-1/2} S_w S_t^{-1/2} = U diag(d) U^T; axes = S_t^{-1/2} U, so that axes^T S_t axes = I
        values, vectors = torch.linalg.eigh(total)
        inv_sqrt = (vectors / values.clamp_min(1e-12).sqrt()) @ vectors.T
        d, u = torch.linalg.eigh(inv_sqrt @ within @ inv_sqrt)
        self.axes.copy_((inv_sqrt @ u)[:, torch.argsort(d)[: self.components]])
        return self

    def keyed(self, emb: Tensor, key: Key) -> Tensor:
        rotation = keyed_orthogonal(key, self.label, self.components).to(emb.device)
        return self.scale * ((emb.double() - self.mean) @ self.axes) @ rotation.T


TRANSFORMS: dict[str, type[TemplateTransform]] = {
    cls.label: cls for cls in (KeyedRotation, WhitenedRotation, DiscriminantRotation, SignProjection)
}


def make_transform(name: str, embedding_dim: int, **settings: int | str | None) -> TemplateTransform:
    """An unfitted transform by its name in :data:`TRANSFORMS`, with ``settings`` (``components``, and those of its
    kind: ``compare`` of the whitened rotation, ``bits`` of the sign projection); a setting given as ``None`` takes
    the transform's default. A setting the transform does not have is refused, naming the transform."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; known: {sorted(TRANSFORMS)}")
    cls = TRANSFORMS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "embedding_dim"}
    given = {k: v for k, v in settings.items() if v is not None}
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(f"{', '.join(unknown)} is not a setting of {name!r} (its settings: {sorted(accepted)})")
    return cls(embedding_dim, **given)
