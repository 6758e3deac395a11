"""GeneratorModule: trains the generator G against a frozen embedding network F."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from distortion.data.batches import ImageBatch, PairBatch
from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_templates import TemplateTransform, evaluation_key, random_key
from distortion.models.generator import Generator
from distortion.modules.base import TrainableModule, load_frozen, network_arguments
from distortion.modules.embedding import EmbeddingModule
from distortion.modules.legacy import upgrade_hyperparameters, upgrade_state_dict
from distortion.modules.reader import ReaderModule
from distortion.objective import Budget, ImageTerm, Objective, PerceptualTerm


class GeneratorModule(TrainableModule):
    """Train G with the method's loss (:class:`~distortion.objective.Objective`) against a frozen F.

    F is a pretrained network given as a module (a face backbone, e.g.
    :class:`distortion.backbones.DlibResNet`) or loaded from an :class:`EmbeddingModule` checkpoint
    (the MNIST F). Either way it is frozen: eval mode, no gradients, and kept in eval mode when
    Lightning switches the module to training. Every G is called ``G(x, template)``
    (:class:`~distortion.models.generator.Generator`).

    Args:
        generator: G.
        embedding_ckpt: checkpoint of a trained F (written by the embedding run).
        embedding: a pretrained F as a module; give this or ``embedding_ckpt``, not both.
        image: the image term (:class:`~distortion.objective.ImageTerm`: distance, alpha, warm-up).
        budget: F's budget (:class:`~distortion.objective.Budget`: tau, beta, penalty or multiplier, storage).
        perceptual: the perceptual term (:class:`~distortion.objective.PerceptualTerm`: P's checkpoint, gamma).
        enrolment: validation and test only: how G's images are refined, stored and keyed
            (:class:`~distortion.deployment.enrolment.Enrolment`); not saved in checkpoints, so
            ``test --ckpt_path ... --model.init_args.enrolment.storage jpeg75`` scores JPEG.
        template_transform: keyed carriers: a keyed transform (:mod:`distortion.deployment.keyed_templates`);
            the carrier then draws ``T_k(F(x))`` with a fresh random key every training step (one decoder for
            every key). :class:`~distortion.callbacks.KeyedDeployment` fits it on training people and calibrates
            the operating threshold; its fitted (public) buffers and the threshold are saved in the checkpoint,
            keys never are. Validation and test use the key of ``enrolment.key`` (default: a fixed throw-away key).
        lr: Adam learning rate.
        lr_schedule: ``cosine`` decay over the run, or ``constant`` (the paper).
    """

    def __init__(
        self,
        generator: Generator,
        embedding_ckpt: str | Path | None = None,
        embedding: nn.Module | None = None,
        image: ImageTerm = ImageTerm(),
        budget: Budget = Budget(),
        perceptual: PerceptualTerm = PerceptualTerm(),
        enrolment: Enrolment = Enrolment(),
        template_transform: TemplateTransform | None = None,
        lr: float = 1e-3,
        lr_schedule: Literal["cosine", "constant"] = "cosine",
    ) -> None:
        super().__init__(lr, lr_schedule=lr_schedule)
        if (embedding_ckpt is None) == (embedding is None):
            raise ValueError("give F as exactly one of embedding_ckpt (an EmbeddingModule checkpoint) or embedding")
        if template_transform is not None and generator.reads_image:
            raise ValueError("template_transform needs a generator that reads only the template (a CarrierGenerator): "
                             "a keyed store draws T_k(F(x)), not x")  # fmt: skip
        networks = network_arguments("generator", "embedding", "template_transform")
        self.save_hyperparameters(ignore=["enrolment", *networks])
        self.generator = generator
        if embedding is None:
            embedding = load_frozen(EmbeddingModule, embedding_ckpt, "net")
        self.embedding = embedding.eval().requires_grad_(False)
        reader = load_frozen(ReaderModule, perceptual.ckpt, "net") if perceptual.ckpt else None
        self.objective = Objective(image, budget, perceptual, reader)
        self.template_transform, self.enrolment = template_transform, enrolment
        self._distorter: Distorter | None = None
        if template_transform is not None:  # the deployment's threshold (score at FAR 0.1%; KeyedDeployment sets it)
            self.register_buffer("operating_threshold", torch.tensor(float("nan"), dtype=torch.float64))

    @property
    def keyed(self) -> bool:
        return self.template_transform is not None

    @property
    def distorter(self) -> Distorter:
        """What the store keeps at evaluation (refinement, storage, the evaluation key when keyed)."""
        if self._distorter is None:
            key = evaluation_key(self.enrolment.key) if self.keyed else None
            self._distorter = Distorter(self.embedding, self.generator, self.enrolment, self.template_transform, key)
        return self._distorter

    def on_train_start(self) -> None:
        """A keyed carrier trains only with its transform fitted (by :class:`~distortion.callbacks.KeyedDeployment`)."""
        if self.keyed and not bool(self.template_transform.fitted):
            raise ValueError("the keyed transform is not fitted: add distortion.callbacks.KeyedDeployment to the "
                             "trainer's callbacks (configs/lfw_keyed_carrier.yaml does)")  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Random states (see the base class); the state of older checkpoints under its current names."""
        super().on_load_checkpoint(checkpoint)
        checkpoint["state_dict"] = upgrade_state_dict(checkpoint["state_dict"])

    def train(self, mode: bool = True) -> GeneratorModule:
        """Switch G's mode; F and P stay in eval mode."""
        super().train(mode)
        self.embedding.eval()
        if self.objective.reader is not None:
            self.objective.reader.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Distort a batch ``(B, C, H, W)`` in ``[0, 1]`` (G's output, before enrolment)."""
        with torch.no_grad():
            emb = self.embedding(x).float()
        return self.generator(x, self.distorter.probe(emb))

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """G(x), F(x), F(G(x)) and the loss with its terms, for one batch of originals; keyed: the carrier
        draws ``T_k(F(x))`` under a fresh random key in training, the evaluation key otherwise."""
        template = None
        if self.keyed:
            with torch.no_grad():
                key = random_key() if self.training else self.distorter.key
                template = self.template_transform(self.embedding(x).float(), key).float()
        share = self.objective.warmup(self.global_step) if self.training else 1.0
        return self.objective(self.generator, self.embedding, x, template, share, training=self.training)

    def _log_terms(self, stage: str, terms: dict[str, Tensor], batch_size: int) -> None:
        for key in ("loss", "d_img", "threshold", "perceptual"):
            if key in terms:
                self.log(f"{stage}/{key}", terms[key], prog_bar=key == "loss", batch_size=batch_size)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> Tensor:
        batch = ImageBatch(*batch)  # also any (x, y) pair a plain loader yields
        terms = self.loss_terms(batch.x)
        self._log_terms("train", terms, len(batch.x))
        if self.objective.multiplier is not None:
            violation = self.trainer.strategy.reduce(terms["violation"], reduce_op="mean")  # one lambda everywhere
            self.objective.update(violation)
            self.log("train/lambda", self.objective.multiplier.value, batch_size=len(batch.x))
        return self.checked(terms["loss"])

    def _eval_step(self, batch: PairBatch, stage: str) -> dict[str, Tensor]:
        x = torch.cat([batch.x_a, batch.x_b])
        terms = self.loss_terms(x)
        self._log_terms(stage, terms, len(x))
        kept = self.distorter.embed(x, terms["emb_x"], terms["gx"].float(), terms["emb_gx"])  # refined, stored
        g_a, _ = kept.stored.chunk(2)
        emb_a, emb_b = terms["emb_x"].chunk(2)
        emb_ga, emb_gb = kept.emb_stored.chunk(2)
        outputs = {
            "x_a": batch.x_a, "y_a": batch.y_a, "same": batch.same, "fold": batch.fold, "g_a": g_a,
            "emb_a": emb_a, "emb_b": emb_b, "emb_ga": emb_ga, "emb_gb": emb_gb,
        }  # fmt: skip
        if self.keyed:  # the matcher keys the probe photo and compares where the transform says
            match = self.distorter.matched
            outputs |= {"emb_ga": match(emb_ga), "emb_gb": match(emb_gb), "probe_b": match(terms["goal"].chunk(2)[1])}
        return outputs

    def validation_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: PairBatch, batch_idx: int) -> Tensor:
        return self.distorter(batch.x_a)


def load_generator_module(ckpt: str | Path, map_location: str | torch.device = "cpu") -> GeneratorModule:
    """A trained GeneratorModule (G and its frozen F) in eval mode, from a ``distortion fit`` checkpoint (older
    layouts included, :mod:`distortion.modules.legacy`)."""
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)  # tensors read only if used
    hparams = checkpoint.get("hyper_parameters", {})
    upgraded = upgrade_hyperparameters(hparams)
    if upgraded == hparams:  # the current layout: Lightning reads the file as it is
        return GeneratorModule.load_from_checkpoint(path, map_location=map_location).eval()
    checkpoint["hyper_parameters"] = upgraded
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return GeneratorModule.load_from_checkpoint(buffer, map_location=map_location).eval()
