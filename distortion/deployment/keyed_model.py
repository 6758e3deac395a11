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

from distortion.deployment.keyed_templates import TemplateTransform, make_transform

__all__ = ["KeyedModel"]


@dataclass
class KeyedModel:
    """A fitted transform, the F it was fitted for, and the deployment's threshold (score at FAR 0.1%)."""

    transform: TemplateTransform
    embedding: str
    threshold: float | None = None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"transform": self.transform.label, "settings": self.transform.settings(),
                    "state": self.transform.state_dict(), "embedding": self.embedding,
                    "threshold": self.threshold}, path)  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | Path) -> KeyedModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"keyed model {str(path)!r} not found (make one with `distortion fit-transform`)")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        settings = dict(saved["settings"])
        transform = make_transform(saved["transform"], settings.pop("embedding_dim"), **settings)
        transform.load_state_dict(saved["state"])
        transform.check_fitted()
        return cls(transform, saved["embedding"], saved["threshold"])
