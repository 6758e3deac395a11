"""Checkpoints written before the package was grouped (0.1 layout) load as they are.

Older ``distortion fit`` checkpoints name classes by their old paths (``distortion.modules.DistortionModule``,
``distortion.keyed_templates.WhitenedRotation``), keep the loss settings as flat arguments (``alpha``, ``tau``,
``storage``, ...) and the multiplier and perceptual network at the module's top level.
:func:`upgrade_hyperparameters` and :func:`upgrade_state_dict` rewrite them into the current layout; current
ones pass through unchanged. Evaluation settings (storage, refinement, key) of old checkpoints are dropped: each
evaluation chooses its own.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LEGACY_ARGUMENTS",
    "LEGACY_CLASS_PATHS",
    "upgrade_hyperparameters",
    "upgrade_init_args",
    "upgrade_state_dict",
]

LEGACY_CLASS_PATHS = {
    "distortion.modules.DistortionModule": "distortion.modules.GeneratorModule",
    "distortion.modules.distortion.DistortionModule": "distortion.modules.GeneratorModule",
    "distortion.keyed_templates.": "distortion.deployment.keyed_templates.",
}
# a flat argument of the old DistortionModule -> (its settings group, its name there)
LEGACY_ARGUMENTS = {
    "image_distance": ("image", "distance"), "alpha": ("image", "alpha"),
    "alpha_warmup_steps": ("image", "warmup_steps"),
    "tau": ("budget", "tau"), "beta": ("budget", "beta"), "constraint": ("budget", "constraint"),
    "multiplier_rate": ("budget", "multiplier_rate"), "multiplier_tolerance": ("budget", "multiplier_tolerance"),
    "robust_storage": ("budget", "robust_storage"),
    "perceptual_ckpt": ("perceptual", "ckpt"), "gamma": ("perceptual", "gamma"),
    "perceptual_stretch": ("perceptual", "stretch"), "perceptual_local_contrast": ("perceptual", "local_contrast"),
    "refine_steps": ("enrolment", "refine_steps"), "refine_lr": ("enrolment", "refine_lr"),
    "refine_robust": ("enrolment", "refine_robust"), "storage": ("enrolment", "storage"),
    "key_file": ("enrolment", "key"),
}  # fmt: skip
_STATE_PREFIXES = {"multiplier.": "objective.multiplier.", "perceptual.": "objective.reader."}
_DROPPED = ("enrolment", "transform_fit_images")  # evaluation settings; the fit size is KeyedDeployment's now


def _class_path(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _class_path(v) for k, v in value.items()}
    if isinstance(value, str):
        for old, new in LEGACY_CLASS_PATHS.items():
            if value == old or (old.endswith(".") and value.startswith(old)):
                return new + value[len(old) :] if old.endswith(".") else new
    return value


def upgrade_init_args(init_args: dict[str, Any]) -> dict[str, Any]:
    """The old module's flat ``init_args`` gathered into the settings groups (current ones are unchanged)."""
    upgraded: dict[str, Any] = {}
    for name, value in init_args.items():
        if name in LEGACY_ARGUMENTS:
            group, field = LEGACY_ARGUMENTS[name]
            upgraded.setdefault(group, {})[field] = value
        else:
            upgraded[name] = value
    return upgraded


def upgrade_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``hyper_parameters`` in the current layout: class paths and argument groups."""
    return {k: v for k, v in upgrade_init_args(_class_path(hparams)).items() if k not in _DROPPED}


def upgrade_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict with the old top-level ``multiplier.*`` and ``perceptual.*`` keys under ``objective``."""
    upgraded = {}
    for key, value in state.items():
        prefix = next((p for p in _STATE_PREFIXES if key.startswith(p)), None)
        upgraded[_STATE_PREFIXES[prefix] + key[len(prefix) :] if prefix else key] = value
    return upgraded
