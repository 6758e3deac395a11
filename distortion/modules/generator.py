"""GeneratorModule: trains the generator G against a frozen embedding network F."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.batches import ImageBatch, PairBatch
from distortion.deployment.distorter import Distorter
from distortion.deployment.keyed_templates import TemplateTransform, random_key
from distortion.deployment.keys import Key, load_key
from distortion.imaging.augment import local_contrast, percentile_stretch
from distortion.imaging.storage import simulate_storage
from distortion.models.carrier import CarrierGenerator
from distortion.modules.base import TrainableModule, built_by_cli, load_frozen
from distortion.modules.embedding import EmbeddingModule
from distortion.modules.reader import ReaderModule
from distortion.objective.constraint import LagrangeMultiplier
from distortion.objective.image_distances import ImageDistance, get_image_distance
from distortion.objective.losses import squared_distance, uniform_prediction_loss
from distortion.reporting.keyed_report import calibrate_threshold


def distortion_loss_terms(
    generator: nn.Module,
    embedding: nn.Module,
    distance: ImageDistance,
    x: Tensor,
    alpha: float,
    beta: float | Tensor,
    tau: float,
    perceptual: nn.Module | None = None,
    gamma: float = 0.0,
    perceptual_stretch: bool = False,
    perceptual_local_contrast: bool = False,
    robust: bool = False,
    normalize: bool = False,
    target: Tensor | None = None,
) -> dict[str, Tensor]:
    """One forward pass of the method: G(x), F(x), F(G(x)) and the loss
    ``L = -alpha * d_img + beta * threshold [+ gamma * KL(uniform || P(G(x)))]``.

    ``threshold`` is the paper's ``mean(relu(||F(x) - F(G(x))||^2 - tau))``; ``violation`` is the same
    relative to the budget (divided by ``tau``), what a Lagrange multiplier follows. A
    :class:`~distortion.models.CarrierGenerator` decodes the F(x) computed here (x reaches it only
    through F). With ``normalize`` the loss is divided by ``1 + beta``: a Lagrange multiplier then moves
    the balance of the two terms, never the size of the gradients (Adam, whose step sizes follow
    the recent gradients, would take one huge step when beta jumps). With ``robust``, F reads G(x)
    after a random storage round trip
    (:func:`~distortion.imaging.storage.simulate_storage`). With ``perceptual_stretch`` /
    ``perceptual_local_contrast`` the perceptual term is the mean of P's term on G(x) and on G(x)
    with its contrast stretched / locally normalised, as a person turns up the contrast of a faint image.
    ``target`` (a carrier only): the template G(x) must carry, ``T_k(F(x))`` for a keyed store (default F(x))."""
    with torch.no_grad():
        emb_x = embedding(x)
    if target is not None and not isinstance(generator, CarrierGenerator):
        raise ValueError("only a carrier generator draws a given template (a keyed one)")
    goal = emb_x if target is None else target
    gx = generator.decode(goal) if isinstance(generator, CarrierGenerator) else generator(x)
    emb_gx = embedding(simulate_storage(gx) if robust else gx)
    d_img = distance(x, gx.float()).mean()
    hinge = F.relu(squared_distance(goal.float(), emb_gx.float()) - tau).mean()
    terms = {"gx": gx, "emb_x": emb_x, "goal": goal, "emb_gx": emb_gx, "d_img": d_img, "threshold": hinge}
    terms["violation"] = hinge.detach() / tau if tau > 0 else hinge.detach()
    loss = -alpha * d_img + beta * hinge
    if perceptual is not None and gamma > 0:
        views = [gx]
        views += [percentile_stretch(gx.float())] if perceptual_stretch else []
        views += [local_contrast(gx.float())] if perceptual_local_contrast else []
        terms["perceptual"] = torch.stack([uniform_prediction_loss(perceptual(v)).mean() for v in views]).mean()
        loss = loss + gamma * terms["perceptual"]
    # a Lagrange multiplier's scale must not reach the optimiser as a sudden jump in gradients
    terms["loss"] = loss / (1 + beta) if normalize else loss
    return terms


class GeneratorModule(TrainableModule):
    """Train G with ``L = -alpha * d_img(x, G(x)) + beta * mean(relu(||F(x) - F(G(x))||^2 - tau))``.

    F is a pretrained network given as a module (a face backbone, e.g.
    :class:`distortion.backbones.DlibResNet`) or loaded from an :class:`EmbeddingModule` checkpoint
    (the MNIST F). Either way it is frozen: eval mode, no gradients, and kept in eval mode when
    Lightning switches the module to training.

    Args:
        generator: G (image in, image of the same shape in ``[0, 1]`` out); a
            :class:`~distortion.models.CarrierGenerator` is bound to F here.
        embedding_ckpt: checkpoint of a trained F (written by the embedding run).
        embedding: a pretrained F as a module; give this or ``embedding_ckpt``, not both.
        image_distance: name of d_img (see :data:`distortion.objective.image_distances.IMAGE_DISTANCES`), or a weighted
            sum of several, e.g. ``{mse: 1.0, decorrelation: 2.0}``.
        alpha: weight of the image distance (maximised).
        beta: weight of the embedding threshold term; with ``constraint="lagrangian"`` its starting value.
        tau: the budget: squared embedding distance below which G is not penalised.
        constraint: ``penalty`` (the paper: beta fixed) or ``lagrangian`` (beta becomes a Lagrange
            multiplier that rises while the mean relative excess over tau is above
            ``multiplier_tolerance`` and falls while it is below, see :mod:`distortion.objective.constraint`;
            the loss is then divided by ``1 + multiplier``, which keeps its gradients on one scale).
        multiplier_rate: speed of the multiplier's updates.
        multiplier_tolerance: the mean excess ``mean(relu(d^2 - tau)) / tau`` the multiplier tolerates.
        alpha_warmup_steps: ramp alpha (and gamma) linearly from 0 over this many training steps, so
            that G first learns to keep F's embedding before it is pushed away from x.
        perceptual_ckpt: checkpoint of a :class:`ReaderModule` used as the perceptual network P:
            the term ``gamma * KL(uniform || P(G(x)))`` pushes P towards not being able to read G(x).
            P must not be the evaluation reader (different seed and architecture).
        gamma: weight of the perceptual term (needs ``perceptual_ckpt``).
        perceptual_stretch: P also reads G(x) with its contrast stretched (a faint digit is no escape).
        perceptual_local_contrast: P also reads G(x) with its local contrast normalised.
        robust_storage: F reads G(x) through a random, differentiable storage round trip in training
            (8-bit, JPEG, resize), so that stored images keep their embedding.
        refine_steps: evaluation only: refine each G(x) against F for this many steps
            (:mod:`distortion.deployment.refinement`) before scoring it.
        refine_lr: the refinement's learning rate.
        storage: evaluation only: score the images as stored (``none``, ``png``, ``jpeg75``, ``resize0.8``).
        template_transform: keyed carriers: a keyed transform (:mod:`distortion.deployment.keyed_templates`); the
            carrier then draws ``T_k(F(x))`` with a fresh random key every training step (one decoder for
            every key). Fitted on ``transform_fit_images`` training images at the start of fitting; its
            fitted (public) buffers are saved in the checkpoint, keys never are.
        key_file: keyed carriers: the key of validation and test (default: a fixed throw-away key).
        transform_fit_images: training images F embeds to fit the transform.
        lr: Adam learning rate.
        lr_schedule: ``cosine`` decay over the run, or ``constant`` (the paper).
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
        constraint: Literal["penalty", "lagrangian"] = "penalty",
        multiplier_rate: float = 0.1,
        multiplier_tolerance: float = 0.02,
        alpha_warmup_steps: int = 0,
        perceptual_ckpt: str | Path | None = None,
        gamma: float = 0.0,
        perceptual_stretch: bool = False,
        perceptual_local_contrast: bool = False,
        robust_storage: bool = False,
        refine_steps: int = 0,
        refine_lr: float = 0.05,
        storage: str = "none",
        template_transform: TemplateTransform | None = None,
        key_file: str | None = None,
        transform_fit_images: int = 4096,
        lr: float = 1e-3,
        lr_schedule: Literal["cosine", "constant"] = "cosine",
    ) -> None:
        super().__init__(lr, lr_schedule=lr_schedule)
        for name, value in (
            ("alpha", alpha),
            ("beta", beta),
            ("tau", tau),
            ("alpha_warmup_steps", alpha_warmup_steps),
            ("gamma", gamma),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if constraint not in ("penalty", "lagrangian"):
            raise ValueError(f"constraint must be 'penalty' or 'lagrangian', got {constraint!r}")
        if (embedding_ckpt is None) == (embedding is None):
            raise ValueError("give F as exactly one of embedding_ckpt (an EmbeddingModule checkpoint) or embedding")
        self.distance = get_image_distance(image_distance)
        self.save_hyperparameters(ignore=[] if built_by_cli() else ["generator", "embedding", "template_transform"])
        self.generator = generator
        if embedding is None:
            embedding = load_frozen(EmbeddingModule, embedding_ckpt, "net")
        self.embedding = embedding.eval().requires_grad_(False)
        if isinstance(generator, CarrierGenerator):
            generator.bind(self.embedding)
        self.alpha, self.beta, self.tau = alpha, beta, tau
        self.multiplier = (
            LagrangeMultiplier(max(beta, 1e-2), multiplier_rate, multiplier_tolerance)
            if constraint == "lagrangian" else None
        )  # fmt: skip
        self.alpha_warmup_steps = alpha_warmup_steps
        if gamma > 0 and perceptual_ckpt is None:
            raise ValueError("gamma > 0 needs perceptual_ckpt, the checkpoint of the perceptual network P")
        self.perceptual = load_frozen(ReaderModule, perceptual_ckpt, "net") if perceptual_ckpt else None
        self.gamma, self.perceptual_stretch = gamma, perceptual_stretch
        self.perceptual_local_contrast, self.robust_storage = perceptual_local_contrast, robust_storage
        if template_transform is not None and not isinstance(generator, CarrierGenerator):
            raise ValueError("template_transform needs a CarrierGenerator: a keyed store draws T_k(F(x)), not x")
        self.template_transform, self.transform_fit_images = template_transform, transform_fit_images
        self.key_file = key_file
        self.refine_steps, self.refine_lr, self.storage = refine_steps, refine_lr, storage
        self._distorter: Distorter | None = None
        self._calibrated_at = -1  # the global step of the last calibration of the operating threshold
        if template_transform is not None:  # the deployment's threshold (score at FAR 0.1%), set at every checkpoint
            self.register_buffer("operating_threshold", torch.tensor(float("nan"), dtype=torch.float64))

    @property
    def keyed(self) -> bool:
        return self.template_transform is not None

    def evaluation_key(self) -> Key:
        """The key of validation and test: ``key_file``'s, or a fixed throw-away key."""
        if self.key_file is not None:
            return load_key(self.key_file)
        return random_key(torch.Generator().manual_seed(0))

    @property
    def distorter(self) -> Distorter:
        """What the store keeps at evaluation (refinement, storage, the evaluation key when keyed)."""
        if self._distorter is None:
            key = self.evaluation_key() if self.keyed else None
            self._distorter = Distorter(self.embedding, self.generator, self.refine_steps, self.refine_lr,
                                        storage=self.storage, transform=self.template_transform, key=key)  # fmt: skip
        return self._distorter

    def on_fit_start(self) -> None:
        """Fit the keyed transform on F of training images (training people only) when it is not fitted."""
        if not self.keyed or bool(self.template_transform.fitted):
            return
        embeddings, labels, seen = [], [], 0
        with torch.no_grad():
            for batch in self.trainer.datamodule.train_dataloader():
                batch = ImageBatch(*batch)
                embeddings.append(self.embedding(batch.x.to(self.device)).float().cpu())
                labels.append(batch.y.cpu())
                seen += len(batch.x)
                if seen >= self.transform_fit_images:
                    break
        n = self.transform_fit_images
        self.template_transform.fit(torch.cat(embeddings)[:n], torch.cat(labels)[:n])
        self.template_transform.to(self.device)

    @torch.no_grad()
    def calibrate(self, images: int = 512) -> float:
        """Set :attr:`operating_threshold` from carriers of ``images`` training images against other training
        people's keyed photos (FAR 0.1%), under the evaluation key."""
        stored, probes, labels, seen = [], [], [], 0
        for batch in self.trainer.datamodule.train_dataloader():
            batch = ImageBatch(*batch)
            x = batch.x.to(self.device).float()
            emb = self.embedding(x).float()
            stored.append(self.embedding(self.distorter(x, target=emb)).float().cpu())
            probes.append(self.distorter.probe(emb).float().cpu())
            labels.append(batch.y.cpu())
            seen += len(x)
            if seen >= images:
                break
        threshold = calibrate_threshold(torch.cat(stored), torch.cat(probes), torch.cat(labels))
        self.operating_threshold.fill_(float(threshold))
        return float(threshold)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Random states (see the base class) and, keyed and fitting, the operating threshold calibrated now."""
        super().on_save_checkpoint(checkpoint)
        if not (self.keyed and self._trainer is not None and self.trainer.state.fn == "fit"):
            return
        if self._calibrated_at != self.global_step:  # best and last of one step share one calibration
            was_training = self.training
            self.eval()
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # the saved random states stay those of the run
                threshold = self.calibrate()
            self.train(was_training)
            self._calibrated_at = self.global_step
            print(f"operating threshold (FAR 0.1%, training people): {threshold:.4f}")
        checkpoint["state_dict"]["operating_threshold"] = self.operating_threshold.clone()

    def warmup(self) -> float:
        """The share of alpha and gamma in force at the current training step (1 outside training)."""
        if self.alpha_warmup_steps == 0 or not self.training:
            return 1.0
        return min(1.0, self.global_step / self.alpha_warmup_steps)

    def current_alpha(self) -> float:
        """alpha after the linear warm-up at the current training step."""
        return self.alpha * self.warmup()

    def current_beta(self) -> float | Tensor:
        """The weight of the threshold term now: beta, or the Lagrange multiplier's value."""
        return self.beta if self.multiplier is None else self.multiplier.value.clone()

    def train(self, mode: bool = True) -> GeneratorModule:
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
        """G(x), F(x), F(G(x)) and the loss with its terms, for one batch of originals; keyed: the carrier
        draws ``T_k(F(x))`` under a fresh random key in training, the evaluation key otherwise."""
        share = self.warmup()
        target = None
        if self.keyed:
            with torch.no_grad():
                key = random_key() if self.training else self.distorter.key
                target = self.template_transform(self.embedding(x).float(), key).float()
        return distortion_loss_terms(
            self.generator, self.embedding, self.distance, x, self.alpha * share, self.current_beta(), self.tau,
            self.perceptual, self.gamma * share, self.perceptual_stretch, self.perceptual_local_contrast,
            robust=self.robust_storage and self.training, normalize=self.multiplier is not None, target=target,
        )  # fmt: skip

    def _log_terms(self, stage: str, terms: dict[str, Tensor], batch_size: int) -> None:
        for key in ("loss", "d_img", "threshold", "perceptual"):
            if key in terms:
                self.log(f"{stage}/{key}", terms[key], prog_bar=key == "loss", batch_size=batch_size)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> Tensor:
        batch = ImageBatch(*batch)  # also any (x, y) pair a plain loader yields
        terms = self.loss_terms(batch.x)
        self._log_terms("train", terms, len(batch.x))
        if self.multiplier is not None:
            violation = self.trainer.strategy.reduce(terms["violation"], reduce_op="mean")  # one lambda everywhere
            self.multiplier.update(violation)
            self.log("train/lambda", self.multiplier.value, batch_size=len(batch.x))
        return self.checked(terms["loss"])

    def _eval_step(self, batch: PairBatch, stage: str) -> dict[str, Tensor]:
        x = torch.cat([batch.x_a, batch.x_b])
        terms = self.loss_terms(x)
        self._log_terms(stage, terms, len(x))
        gx, emb_gx = terms["gx"].float(), terms["emb_gx"]
        if not self.distorter.is_identity_of_g:  # refined and / or stored: score what is kept
            gx = self.distorter.finish(x, gx, terms["emb_x"])
            emb_gx = self.embedding(gx)
        g_a, _ = gx.chunk(2)
        emb_a, emb_b = terms["emb_x"].chunk(2)
        emb_ga, emb_gb = emb_gx.chunk(2)
        outputs = {
            "x_a": batch.x_a, "y_a": batch.y_a, "same": batch.same, "fold": batch.fold, "g_a": g_a,
            "emb_a": emb_a, "emb_b": emb_b, "emb_ga": emb_ga, "emb_gb": emb_gb,
        }  # fmt: skip
        if self.keyed:  # the matcher keys the probe photo
            outputs["probe_b"] = terms["goal"].chunk(2)[1]
        return outputs

    def validation_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: PairBatch, batch_idx: int) -> Tensor:
        return self.distorter(batch.x_a)


def load_generator_module(ckpt: str | Path, map_location: str | torch.device = "cpu") -> GeneratorModule:
    """A trained GeneratorModule (G and its frozen F) in eval mode, from a ``distortion fit`` checkpoint."""
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    return GeneratorModule.load_from_checkpoint(path, map_location=map_location).eval()
