"""What every trainable module of the project shares: Adam, a stop on a non-finite loss, and
random states saved in checkpoints."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

M = TypeVar("M", bound=L.LightningModule)
_FROM_CONFIG: ContextVar[bool] = ContextVar("distortion_from_config", default=False)


@contextmanager
def building_from_config() -> Iterator[None]:
    """Mark the modules built inside as built from a config (by :class:`~distortion.lightning_cli.DistortionCLI`):
    Lightning then saves the config of their networks (``class_path``/``init_args``) as hyperparameters, from which
    ``load_from_checkpoint`` rebuilds them."""
    token = _FROM_CONFIG.set(True)
    try:
        yield
    finally:
        _FROM_CONFIG.reset(token)


def network_arguments(*names: str) -> list[str]:
    """The constructor arguments that ``save_hyperparameters`` must ignore: none for a module built from a config,
    else ``names`` (networks built in Python are state, saved with the weights, not settings)."""
    return [] if _FROM_CONFIG.get() else list(names)


class TrainableModule(L.LightningModule):
    """A LightningModule trained with Adam at learning rate ``lr``, decayed by a cosine over the whole run
    to ``lr / 100`` (``lr_schedule="cosine"``) or kept constant (``"constant"``, as the paper trained).

    Checkpoints carry the global random states (torch, numpy, Python); with the datamodules'
    resumable sampler, a run killed at any step and resumed with ``--ckpt_path last`` ends with
    the same weights and metrics as a run that was never interrupted.

    ``weight_decay`` is Adam's L2 penalty (the paper's Keras models use an L2 kernel regulariser).
    """

    def __init__(
        self, lr: float, weight_decay: float = 0.0, lr_schedule: Literal["cosine", "constant"] = "cosine"
    ) -> None:
        super().__init__()
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
        self.lr, self.weight_decay, self.lr_schedule = lr, weight_decay, lr_schedule

    def configure_optimizers(self) -> dict:
        params = (p for p in self.parameters() if p.requires_grad)
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return {"optimizer": optimizer}
        trainer = attached_trainer(self)
        steps = max(1, int(trainer.estimated_stepping_batches)) if trainer is not None else 1
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=self.lr / 100)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def checked(self, loss: Tensor) -> Tensor:
        """Return ``loss``, or stop the run if it is NaN or infinite (the last checkpoint stays as it was)."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at global step {self.global_step}, epoch "
                f"{self.current_epoch}; the run stops here and the last saved checkpoint is the last good one"
            )
        return loss

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the global random states, so a resumed run draws what the uninterrupted run would."""
        _, keys, pos, has_gauss, gauss = np.random.get_state()  # plain types: loadable with weights_only
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "numpy": (torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random states of :meth:`on_save_checkpoint` when a trainer resumes from the
        checkpoint (not when a frozen network is loaded from it); older checkpoints load as before."""
        states = checkpoint.get("rng_states")
        if states is not None and attached_trainer(self) is not None:
            torch.set_rng_state(states["torch"])
            keys, pos, has_gauss, gauss = states["numpy"]
            np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            random.setstate(states["python"])


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The trainer running ``module``, or ``None`` for a module used on its own (loaded, or built in a test)."""
    try:
        return module.trainer
    except RuntimeError:  # Lightning: "... is not attached to a `Trainer`"
        return None


def load_frozen(module_cls: type[M], ckpt_path: str | Path, attr: str) -> nn.Module:
    """Load ``module_cls`` from a checkpoint and return its network ``attr``, in eval mode, without gradients."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found (train it first, or fix the path in the config)")
    net = getattr(module_cls.load_from_checkpoint(path, map_location="cpu"), attr)
    net.eval().requires_grad_(False)
    return net
