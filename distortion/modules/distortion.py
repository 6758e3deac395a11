"""DistortionModule: trains the generator G against a frozen embedding network F."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from distortion.augment import local_contrast, percentile_stretch
from distortion.losses import ImageDistance, get_image_distance, threshold_loss, uniform_prediction_loss
from distortion.modules.base import TrainableModule, built_by_cli, load_frozen
from distortion.modules.embedding import EmbeddingModule
from distortion.modules.reader import ReaderModule


def distortion_loss_terms(
    generator: nn.Module,
    embedding: nn.Module,
    distance: ImageDistance,
    x: Tensor,
    alpha: float,
    beta: float,
    tau: float,
    perceptual: nn.Module | None = None,
    gamma: float = 0.0,
    perceptual_stretch: bool = False,
    perceptual_local_contrast: bool = False,
) -> dict[str, Tensor]:
    """One forward pass of the method: G(x), F(x), F(G(x)) and the loss
    ``L = -alpha * d_img + beta * threshold [+ gamma * KL(uniform || P(G(x)))]``.

    With ``perceptual_stretch`` / ``perceptual_local_contrast`` the perceptual term is the mean of
    P's term on G(x) and on G(x) with its contrast stretched (:func:`~distortion.augment.percentile_stretch`)
    / locally normalised (:func:`~distortion.augment.local_contrast`), as a person turns up the
    contrast of a faint image."""
    gx = generator(x)
    with torch.no_grad():
        emb_x = embedding(x)
    emb_gx = embedding(gx)
    d_img = distance(x, gx.float()).mean()
    d_emb = threshold_loss(emb_x.float(), emb_gx.float(), tau)
    terms = {"gx": gx, "emb_x": emb_x, "emb_gx": emb_gx, "d_img": d_img, "threshold": d_emb}
    loss = -alpha * d_img + beta * d_emb
    if perceptual is not None and gamma > 0:
        views = [gx]
        views += [percentile_stretch(gx.float())] if perceptual_stretch else []
        views += [local_contrast(gx.float())] if perceptual_local_contrast else []
        terms["perceptual"] = torch.stack([uniform_prediction_loss(perceptual(v)).mean() for v in views]).mean()
        loss = loss + gamma * terms["perceptual"]
    terms["loss"] = loss
    return terms


class DistortionModule(TrainableModule):
    """Train G with ``L = -alpha * d_img(x, G(x)) + beta * mean(relu(||F(x) - F(G(x))||^2 - tau))``.

    F is a pretrained network given as a module (a face backbone, e.g.
    :class:`distortion.backbones.DlibResNet`) or loaded from an :class:`EmbeddingModule` checkpoint
    (the MNIST F). Either way it is frozen: eval mode, no gradients, and kept in eval mode when
    Lightning switches the module to training.

    Args:
        generator: the generator G (image in, image of the same shape in ``[0, 1]`` out).
        embedding_ckpt: checkpoint of a trained F (written by the embedding run).
        embedding: a pretrained F as a module; give this or ``embedding_ckpt``, not both.
        image_distance: name of d_img (see :data:`distortion.losses.IMAGE_DISTANCES`), or a weighted
            sum of several, e.g. ``{mse: 1.0, decorrelation: 2.0}``.
        alpha: weight of the image distance (maximised).
        beta: weight of the embedding threshold loss.
        tau: squared embedding distance below which G is not penalised.
        alpha_warmup_steps: ramp alpha (and gamma) linearly from 0 over this many training steps, so
            that G first learns to keep F's embedding before it is pushed away from x (avoids
            collapsing to a saturated constant image at higher learning rates).
        perceptual_ckpt: checkpoint of a :class:`ReaderModule` used as the perceptual network P:
            the term ``gamma * KL(uniform || P(G(x)))`` pushes P towards not being able to read G(x).
            P must not be the evaluation reader (different seed and architecture).
        gamma: weight of the perceptual term (needs ``perceptual_ckpt``).
        perceptual_stretch: P also reads G(x) with its contrast stretched (a faint digit is no escape).
        perceptual_local_contrast: P also reads G(x) with its local contrast normalised.
        lr: Adam learning rate.
    """

    def __init__(
        self,
        generator: nn.Module,
        embedding_ckpt: str | Path | None = None,
        embedding: nn.Module | None = None,
        image_distance: str | dict[str, float | dict[str, int | float]] = "mse",
        alpha: float = 1.0,
        beta: float = 1.0,
        tau: float = 0.0,
        alpha_warmup_steps: int = 0,
        perceptual_ckpt: str | Path | None = None,
        gamma: float = 0.0,
        perceptual_stretch: bool = False,
        perceptual_local_contrast: bool = False,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(lr)
        for name, value in (
            ("alpha", alpha),
            ("beta", beta),
            ("tau", tau),
            ("alpha_warmup_steps", alpha_warmup_steps),
            ("gamma", gamma),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if (embedding_ckpt is None) == (embedding is None):
            raise ValueError("give F as exactly one of embedding_ckpt (an EmbeddingModule checkpoint) or embedding")
        self.distance = get_image_distance(image_distance)
        self.save_hyperparameters(ignore=[] if built_by_cli() else ["generator", "embedding"])
        self.generator = generator
        if embedding is None:
            embedding = load_frozen(EmbeddingModule, embedding_ckpt, "net")
        self.embedding = embedding.eval().requires_grad_(False)
        self.alpha, self.beta, self.tau = alpha, beta, tau
        self.alpha_warmup_steps = alpha_warmup_steps
        if gamma > 0 and perceptual_ckpt is None:
            raise ValueError("gamma > 0 needs perceptual_ckpt, the checkpoint of the perceptual network P")
        self.perceptual = load_frozen(ReaderModule, perceptual_ckpt, "net") if perceptual_ckpt else None
        self.gamma, self.perceptual_stretch = gamma, perceptual_stretch
        self.perceptual_local_contrast = perceptual_local_contrast

    def warmup(self) -> float:
        """The share of alpha and gamma in force at the current training step (1 outside training)."""
        if self.alpha_warmup_steps == 0 or not self.training:
            return 1.0
        return min(1.0, self.global_step / self.alpha_warmup_steps)

    def current_alpha(self) -> float:
        """alpha after the linear warm-up at the current training step."""
        return self.alpha * self.warmup()

    def train(self, mode: bool = True) -> DistortionModule:
        """Switch G's mode; F and P stay in eval mode."""
        super().train(mode)
        self.embedding.eval()
        if self.perceptual is not None:
            self.perceptual.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Distort a batch ``(B, C, H, W)`` in ``[0, 1]``."""
        return self.generator(x)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """G(x), F(x), F(G(x)) and the loss with its two terms, for one batch of originals."""
        share = self.warmup()
        return distortion_loss_terms(
            self.generator, self.embedding, self.distance, x, self.alpha * share, self.beta, self.tau,
            self.perceptual, self.gamma * share, self.perceptual_stretch, self.perceptual_local_contrast,
        )  # fmt: skip

    def _log_terms(self, stage: str, terms: dict[str, Tensor], batch_size: int) -> None:
        for key in ("loss", "d_img", "threshold", "perceptual"):
            if key in terms:
                self.log(f"{stage}/{key}", terms[key], prog_bar=key == "loss", batch_size=batch_size)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, _ = batch
        terms = self.loss_terms(x)
        self._log_terms("train", terms, len(x))
        return self.checked(terms["loss"])

    def _eval_step(self, batch: tuple[Tensor, ...], stage: str) -> dict[str, Tensor]:
        x_a, y_a, x_b, _, same, *fold = batch  # LFW pairs also carry their fold
        terms = self.loss_terms(torch.cat([x_a, x_b]))
        self._log_terms(stage, terms, 2 * len(x_a))
        g_a, _ = terms["gx"].float().chunk(2)
        emb_a, emb_b = terms["emb_x"].chunk(2)
        emb_ga, emb_gb = terms["emb_gx"].chunk(2)
        outputs = {
            "x_a": x_a, "y_a": y_a, "same": same, "g_a": g_a,
            "emb_a": emb_a, "emb_b": emb_b, "emb_ga": emb_ga, "emb_gb": emb_gb,
        }  # fmt: skip
        if fold:
            outputs["fold"] = fold[0]
        return outputs

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self.generator(batch[0])


def load_distortion_module(ckpt: str | Path) -> DistortionModule:
    """A trained DistortionModule (G and its frozen F) in eval mode, from a ``distortion fit`` checkpoint."""
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    return DistortionModule.load_from_checkpoint(path, map_location="cpu").eval()
