"""The one way from a photo to what is stored (Distorter.embed), the one calibration of the operating threshold,
and loading a deployment (a key given to a model that is not keyed is refused)."""

from __future__ import annotations

import pytest
import torch

from distortion.deployment.calibration import calibrate_distorter, operating_threshold
from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_templates import WhitenedRotation
from distortion.deployment.keys import write_key
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.verification import calibrate_threshold
from distortion.models import CarrierGenerator, ConvEmbedding
from tests.keys import fixed_key


def _parts(keyed: bool) -> tuple[torch.nn.Module, Distorter]:
    torch.manual_seed(0)
    f = ConvEmbedding(width=4, dim=8).eval().requires_grad_(False)
    g = CarrierGenerator(8, (1, 28, 28), noise_dim=4, width=4).eval()
    transform = WhitenedRotation(8, 4).fit(torch.randn(64, 8)) if keyed else None
    key = fixed_key("site") if keyed else None
    return f, Distorter(f, g, Enrolment(refine_steps=2, storage="png"), transform, key)


@pytest.mark.parametrize("keyed", [False, True])
def test_embed_is_f_of_x_the_stored_image_and_f_of_it(keyed: bool) -> None:
    f, distorter = _parts(keyed)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    batch = distorter.embed(x)
    torch.manual_seed(5)
    with torch.no_grad():
        stored = distorter(x, target=f(x))
        assert torch.equal(batch.emb_x, f(x)) and torch.equal(batch.stored, stored)
        assert torch.equal(batch.emb_stored, f(stored))
    assert batch.stored.shape == x.shape and float(batch.stored.min()) >= 0 and float(batch.stored.max()) <= 1


def test_embed_keeps_g_s_output_and_its_template_when_nothing_changes_them() -> None:
    f = ConvEmbedding(width=4, dim=8).eval()
    distorter = Distorter(f, CarrierGenerator(8, (1, 28, 28), noise_dim=4, width=4))
    x, start, emb_start = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28), torch.randn(2, 8)
    batch = distorter.embed(x, f(x), start, emb_start)
    assert batch.stored is start and torch.equal(batch.emb_stored, emb_start)


def test_the_keyed_threshold_is_calibrated_where_the_matcher_compares() -> None:
    f, distorter = _parts(keyed=True)
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(32) // 2
    torch.manual_seed(3)
    threshold = calibrate_distorter(distorter, [(x[:16], labels[:16]), (x[16:], labels[16:])], images=24)
    torch.manual_seed(3)
    first, second = distorter.embed(x[:16]), distorter.embed(x[16:])
    stored = torch.cat([first.emb_stored, second.emb_stored])[:24]
    probes = distorter.probe(torch.cat([first.emb_x, second.emb_x])[:24])
    expected = calibrate_threshold(distorter.matched(stored), distorter.matched(probes), labels[:24])
    assert threshold == pytest.approx(float(expected))
    plain = operating_threshold(stored, torch.cat([first.emb_x, second.emb_x])[:24], labels[:24])
    assert float(plain) == pytest.approx(float(calibrate_threshold(stored, torch.cat([first.emb_x, second.emb_x])[:24],
                                                                   labels[:24])))  # fmt: skip


def test_a_key_for_a_model_that_is_not_keyed_is_refused(tmp_path) -> None:
    key = write_key(fixed_key("site"), tmp_path / "site.key")
    with pytest.raises(ValueError, match="the model is not keyed"):
        load_deployment(ModelSource(embedding="dlib"), torch.device("cpu"), Enrolment(5, key=str(key)))
    with pytest.raises(ValueError, match="exactly one of --model.ckpt"):
        load_deployment(ModelSource(), torch.device("cpu"))


def test_a_keyed_carrier_without_its_deployment_callback_stops_with_the_fix(tmp_path) -> None:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from distortion.callbacks import KeyedDeployment
    from distortion.models import MLPEmbedding
    from distortion.modules import GeneratorModule

    def module() -> GeneratorModule:
        return GeneratorModule(CarrierGenerator(4, (1, 28, 28), noise_dim=2, width=2), embedding=MLPEmbedding(hidden=8,
                               dim=4), template_transform=WhitenedRotation(4, 2))  # fmt: skip

    loader = DataLoader(TensorDataset(torch.rand(32, 1, 28, 28), torch.arange(32) // 2), batch_size=8)
    plain = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="add distortion.callbacks.KeyedDeployment"):
        plain.fit(module(), train_dataloaders=loader)

    class Photos(L.LightningDataModule):
        def train_dataloader(self) -> DataLoader:
            return loader

    fitted = module()
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        callbacks=[KeyedDeployment(fit_images=32, calibration_images=16)])  # fmt: skip
    trainer.fit(fitted, datamodule=Photos())
    assert bool(fitted.template_transform.fitted)
    with pytest.raises(ValueError, match="needs a GeneratorModule with a template_transform"):
        L.Trainer(max_steps=1, logger=False, callbacks=[KeyedDeployment()]).fit(
            GeneratorModule(CarrierGenerator(4, (1, 28, 28), noise_dim=2, width=2), embedding=MLPEmbedding(hidden=8,
                            dim=4)), datamodule=Photos())  # fmt: skip
