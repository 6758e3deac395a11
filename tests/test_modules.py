"""The LightningModules: F frozen, gradients only to G, the loss terms, warm-up and the perceptual term."""

from __future__ import annotations

import pytest
import torch
from torchvision.datasets import MNIST

from datamodules import LFWDataModule
from distortion.backbones import DlibResNet
from distortion.cli import main
from distortion.models import UNet
from distortion.modules import GeneratorModule
from tests.conftest import DATA


def test_embedding_stays_frozen_during_generator_training(trained) -> None:
    before = torch.load(trained["embedding"], map_location="cpu", weights_only=False)["state_dict"]
    main(["fit", "--config", str(trained["generator_config"]), "--trainer.max_steps", "5",
          "--data.init_args.limit_train", "512", "--data.init_args.limit_eval", "64"])  # fmt: skip
    ckpt = torch.load(trained["out"] / "gen" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    after = {k.removeprefix("embedding."): v for k, v in ckpt["state_dict"].items() if k.startswith("embedding.")}
    assert after.keys() == {k.removeprefix("net.") for k in before}
    for key, value in before.items():
        assert torch.equal(after[key.removeprefix("net.")], value), key


def test_gradients_reach_the_generator_not_the_embedding(trained) -> None:
    module = GeneratorModule(torch.nn.Conv2d(1, 1, 3, padding=1), trained["embedding"], alpha=1.0, beta=1.0)
    module.train()
    assert not module.embedding.training
    terms = module.loss_terms(torch.rand(4, 1, 28, 28))
    terms["loss"].backward()
    assert module.generator.weight.grad is not None and module.generator.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in module.embedding.parameters())


def test_generator_loss_decreases_on_real_digits(trained) -> None:

    from distortion.models import UNet

    torch.manual_seed(0)
    x = MNIST(str(DATA), train=True).data[:64].unsqueeze(1).float() / 255
    module = GeneratorModule(UNet(depth=2, width=8), trained["embedding"], alpha=1.0, beta=10.0, tau=0.02)
    opt = module.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(30):
        loss = module.loss_terms(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha_warmup_steps": -1}, "alpha_warmup_steps must be >= 0"), ({"tau": float("nan")}, "tau must be >= 0")],
)
def test_distortion_module_rejects_bad_weights(trained, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorModule(torch.nn.Identity(), trained["embedding"], **kwargs)


def test_alpha_warms_up_linearly(trained) -> None:
    module = GeneratorModule(torch.nn.Identity(), trained["embedding"], alpha=2.0, alpha_warmup_steps=100)
    assert module.current_alpha() == 0.0  # global_step is 0 before training


def test_readers_and_f_stay_unchanged_while_g_learns_to_fool_p(trained) -> None:
    def weights(path):
        return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]

    before_p, before_f = weights(trained["perceptual"]), weights(trained["embedding"])
    main(["fit", "--config", str(trained["unreadable_config"]), "--trainer.max_steps", "5",
          "--trainer.log_every_n_steps", "1", "--data.init_args.limit_train", "512",
          "--data.init_args.limit_eval", "256"])  # fmt: skip
    after = weights(trained["out"] / "gen_unreadable" / "checkpoints" / "last.ckpt")
    for prefix, before in (("perceptual.", before_p), ("embedding.", before_f)):
        for key, value in before.items():
            if key.startswith("net."):
                assert torch.equal(after[prefix + key.removeprefix("net.")], value), prefix + key
    run = sorted((trained["out"] / "gen_unreadable").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    assert "train/perceptual" in (run / "metrics.csv").read_text().splitlines()[0]


def test_gamma_needs_a_perceptual_network(trained) -> None:
    with pytest.raises(ValueError, match="gamma > 0 needs perceptual_ckpt"):
        GeneratorModule(torch.nn.Identity(), trained["embedding"], gamma=1.0)


def test_perceptual_term_pushes_p_towards_uniform(trained) -> None:
    from distortion.objective.losses import uniform_prediction_loss

    module = GeneratorModule(
        torch.nn.Identity(), trained["embedding"], perceptual_ckpt=trained["perceptual"], gamma=2.0
    )
    x = torch.rand(8, 1, 28, 28)
    terms = module.loss_terms(x)
    expected = uniform_prediction_loss(module.perceptual(x)).mean()
    assert terms["perceptual"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("stretch, local", [(True, False), (True, True), (False, True)])
def test_perceptual_term_also_reads_contrast_enhanced_views(trained, stretch: bool, local: bool) -> None:
    from distortion.imaging.augment import local_contrast, percentile_stretch
    from distortion.objective.losses import uniform_prediction_loss

    module = GeneratorModule(
        torch.nn.Identity(), trained["embedding"], perceptual_ckpt=trained["perceptual"], gamma=2.0,
        perceptual_stretch=stretch, perceptual_local_contrast=local, alpha_warmup_steps=10,
    )  # fmt: skip
    x = 0.1 * torch.rand(8, 1, 28, 28)  # a faint image
    views = [x] + [percentile_stretch(x)] * stretch + [local_contrast(x)] * local
    expected = torch.stack([uniform_prediction_loss(module.perceptual(v)).mean() for v in views]).mean()
    assert module.warmup() == 0.0 and "perceptual" not in module.loss_terms(x)  # gamma ramps up with alpha
    assert module.eval().warmup() == 1.0
    assert module.loss_terms(x)["perceptual"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_g_through_the_dlib_resnet_lowers_the_loss_on_real_chips(tiny) -> None:
    dm = LFWDataModule(data_dir=str(tiny["out"] / "data"), cache_dir=str(tiny["out"] / "cache"), crop_scale=1.0)
    dm.setup()
    x = torch.stack([dm.datasets["val"][i][0] for i in range(4)])
    torch.manual_seed(0)
    module = GeneratorModule(
        UNet(3, depth=2, width=8, residual=True),
        embedding=DlibResNet(),
        image_distance="local_decorrelation",
        alpha=1.0,
        beta=10.0,
        tau=0.04,
    )
    optimizer = torch.optim.Adam(module.generator.parameters(), lr=3e-3)
    terms = []
    for _ in range(20):
        step = module.loss_terms(x)
        optimizer.zero_grad()
        step["loss"].backward()
        optimizer.step()
        terms.append({k: float(step[k].detach()) for k in ("loss", "d_img", "threshold")})
    assert terms[-1]["loss"] < terms[0]["loss"] - 0.03
    assert terms[-1]["d_img"] > terms[0]["d_img"] and terms[-1]["threshold"] < 0.05
    assert all(p.grad is None for p in module.embedding.parameters()) and not module.embedding.training


def test_f_must_be_given_exactly_once() -> None:
    with pytest.raises(ValueError, match="exactly one of embedding_ckpt"):
        GeneratorModule(UNet(3, 3, depth=1, width=2))


def test_checkpoint_restores_g_and_the_frozen_backbone(tiny) -> None:
    from distortion.modules.generator import load_generator_module

    module = load_generator_module(tiny["ckpt"])
    assert isinstance(module.embedding, DlibResNet) and not module.embedding.training
    reference = DlibResNet()
    for key, value in reference.state_dict().items():
        assert torch.equal(module.embedding.state_dict()[key], value), key


def test_the_lagrangian_constraint_moves_the_multiplier_and_checkpoints_it(trained) -> None:
    from distortion.models import UNet

    module = GeneratorModule(UNet(depth=2, width=4, residual=True), trained["embedding"], beta=2.0, tau=0.1,
                              constraint="lagrangian")  # fmt: skip
    assert {"multiplier.value", "multiplier.average"} <= module.state_dict().keys()
    assert float(module.current_beta()) == pytest.approx(2.0)
    terms = module.loss_terms(torch.rand(8, 1, 28, 28))
    beta = float(module.current_beta())
    expected = (-module.alpha * terms["d_img"] + beta * terms["threshold"]) / (1 + beta)
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-5)  # normalised by 1 + lambda
    with pytest.raises(ValueError, match="constraint must be 'penalty' or 'lagrangian'"):
        GeneratorModule(torch.nn.Identity(), trained["embedding"], constraint="hard")


class RandomProjection(torch.nn.Module):
    """A fixed F that tells images apart without having learned digits: a random unit-norm projection."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.randn(784, 16, generator=torch.Generator().manual_seed(0)) / 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x.flatten(1) @ self.weight, dim=1)


def test_a_trained_carrier_gives_two_different_images_of_one_digit_that_both_match() -> None:
    from distortion.models import CarrierGenerator
    from distortion.objective.losses import squared_distance

    torch.manual_seed(0)
    carrier = CarrierGenerator(16, (1, 28, 28), noise_dim=8, width=16, stages=2)
    module = GeneratorModule(carrier, embedding=RandomProjection(), image_distance="decorrelation", beta=1.0,
                              tau=0.01, constraint="lagrangian")  # fmt: skip
    assert not any("_embedding" in key for key in module.state_dict())  # F is held once, by the module
    train = MNIST(str(DATA), train=True).data[:1024].unsqueeze(1).float() / 255
    optimizer = torch.optim.Adam(carrier.parameters(), lr=3e-3)
    module.train()
    for _ in range(150):
        terms = module.loss_terms(train[torch.randint(0, 1024, (64,))])
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        module.multiplier.update(terms["violation"])
    module.eval()
    x = MNIST(str(DATA), train=False).data[:64].unsqueeze(1).float() / 255
    f = module.embedding
    with torch.no_grad():
        torch.manual_seed(1)
        first = module(x)
        torch.manual_seed(2)
        second = module(x)
        genuine = [squared_distance(f(g), f(x)) for g in (first, second)]
        impostor = squared_distance(f(x), f(x.roll(1, dims=0)))
    assert float((first - second).abs().mean()) > 0.1  # two enrolments, two different images
    for distances in genuine:  # both carry the digit's template
        assert float(distances.median()) < 0.25 * float(impostor.median())
