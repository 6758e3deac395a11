"""What a keyed deployment keeps besides its key: the fitted transform and the operating threshold.

A keyed model file (``torch.save`` of plain types, loadable with ``weights_only``) holds the transform's
class and settings (sizes, the matcher), its fitted buffers (public: F's mean and principal axes over
training people), the name of F, and the threshold of FAR 0.1% calibrated on training people's carriers.
No key is in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from distortion.deployment.keyed_templates import TRANSFORMS, SignProjection, TemplateTransform, WhitenedRotation

__all__ = ["KeyedModel", "make_transform", "operating_threshold"]


def make_transform(
    name: str, embedding_dim: int, components: int = 32, bits: int = 64, compare: str | None = None
) -> TemplateTransform:
    """An unfitted transform by name (a key of :data:`~distortion.deployment.keyed_templates.TRANSFORMS`);
    ``compare`` is the whitened rotation's matcher (:class:`WhitenedRotation`; default its own)."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; known: {sorted(TRANSFORMS)}")
    if TRANSFORMS[name] is WhitenedRotation:
        return WhitenedRotation(embedding_dim, components, *([compare] if compare else []))
    if compare not in (None, "stored"):
        raise ValueError(f"compare={compare!r} is a matcher of the whitened rotation, not of {name!r}")
    if TRANSFORMS[name] is SignProjection:
        return SignProjection(embedding_dim, components, bits)
    return TRANSFORMS[name](embedding_dim, components)


def _settings(transform: TemplateTransform) -> dict[str, int | str]:
    settings = {"embedding_dim": transform.embedding_dim, "components": transform.components}
    if isinstance(transform, SignProjection):
        settings["bits"] = transform.bits
    if isinstance(transform, WhitenedRotation):
        settings["compare"] = transform.compare
    return settings


@dataclass
class KeyedModel:
    """A fitted transform, the F it was fitted for, and the deployment's threshold (score at FAR 0.1%)."""

    transform: TemplateTransform
    embedding: str
    threshold: float | None = None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"transform": self.transform.label, "settings": _settings(self.transform),
                    "state": self.transform.state_dict(), "embedding": self.embedding,
                    "threshold": self.threshold}, path)  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | Path) -> KeyedModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"keyed model {str(path)!r} not found (make one with `distortion fit-transform`)")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        settings = saved["settings"]
        transform = make_transform(saved["transform"], settings["embedding_dim"], settings["components"],
                                   settings.get("bits", 64), settings.get("compare"))  # fmt: skip
        transform.load_state_dict(saved["state"])
        transform.check_fitted()
        return cls(transform, saved["embedding"], saved["threshold"])


def operating_threshold(ckpt: str | Path | None = None, keyed: str | Path | None = None) -> float | None:
    """The calibrated threshold of a keyed model file, else of a keyed carrier's checkpoint; ``None`` when
    neither holds one."""
    if keyed is not None:
        return KeyedModel.load(keyed).threshold
    if ckpt is not None:
        value = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"].get("operating_threshold")
        if value is not None and torch.isfinite(value):
            return float(value)
    return None
