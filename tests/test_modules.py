"""The LightningModules: F frozen, gradients only to G, P untouched, carriers, older checkpoints (the loss itself:
test_objective.py)."""

from __future__ import annotations

import pytest
import torch
from torchvision.datasets import MNIST

from distortion.backbones import DlibResNet
from distortion.cli import main
from distortion.datamodules import LFWDataModule
from distortion.models import Generator, UNet
from distortion.modules import GeneratorModule
from distortion.objective import Budget, ImageTerm
from tests.conftest import DATA


class Conv(Generator):
    """A one-convolution G."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


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
    module = GeneratorModule(Conv(), trained["embedding"])
    module.train()
    assert not module.embedding.training
    terms = module.loss_terms(torch.rand(4, 1, 28, 28))
    terms["loss"].backward()
    assert module.generator.conv.weight.grad is not None and module.generator.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in module.embedding.parameters())


def test_readers_and_f_stay_unchanged_while_g_learns_to_fool_p(trained) -> None:
    def weights(path):
        return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]

    before_p, before_f = weights(trained["perceptual"]), weights(trained["embedding"])
    main(["fit", "--config", str(trained["unreadable_config"]), "--trainer.max_steps", "5",
          "--trainer.log_every_n_steps", "1", "--data.init_args.limit_train", "512",
          "--data.init_args.limit_eval", "256"])  # fmt: skip
    after = weights(trained["out"] / "gen_unreadable" / "checkpoints" / "last.ckpt")
    for prefix, before in (("objective.reader.", before_p), ("embedding.", before_f)):
        for key, value in before.items():
            if key.startswith("net."):
                assert torch.equal(after[prefix + key.removeprefix("net.")], value), prefix + key
    run = sorted((trained["out"] / "gen_unreadable").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    assert "train/perceptual" in (run / "metrics.csv").read_text().splitlines()[0]


def test_g_through_the_dlib_resnet_lowers_the_loss_on_real_chips(tiny) -> None:
    dm = LFWDataModule(data_dir=str(tiny["out"] / "data"), cache_dir=str(tiny["out"] / "cache"), crop_scale=1.0)
    dm.setup()
    x = torch.stack([dm.datasets["val"][i][0] for i in range(4)])
    torch.manual_seed(0)
    module = GeneratorModule(
        UNet(3, depth=2, width=8, residual=True),
        embedding=DlibResNet(),
        image=ImageTerm("local_decorrelation"),
        budget=Budget(tau=0.04, beta=10.0),
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


def test_a_keyed_store_needs_a_generator_that_reads_only_the_template(trained) -> None:
    from distortion.deployment.keyed_templates import WhitenedRotation

    with pytest.raises(ValueError, match="reads only the template"):
        GeneratorModule(UNet(depth=1, width=2), trained["embedding"], template_transform=WhitenedRotation(10, 4))


def test_a_checkpoint_of_the_old_layout_loads_with_the_same_weights(trained, tmp_path) -> None:
    """Flat loss arguments, old class paths and top-level multiplier keys (before the package was grouped)."""
    from distortion.modules.generator import load_generator_module
    from distortion.modules.legacy import LEGACY_ARGUMENTS

    main(["fit", "--config", str(trained["generator_config"]), "--trainer.max_steps", "2", "--name", "gen_old",
          "--data.init_args.limit_train", "256", "--data.init_args.limit_eval", "64"])  # fmt: skip
    current = torch.load(trained["out"] / "gen_old" / "checkpoints" / "last.ckpt", weights_only=False)
    old = dict(current)
    hparams = {k: v for k, v in current["hyper_parameters"].items() if k not in ("image", "budget", "perceptual")}
    for flat, (group, field) in LEGACY_ARGUMENTS.items():
        if field in current["hyper_parameters"].get(group, {}):
            hparams[flat] = current["hyper_parameters"][group][field]
    hparams |= {"_class_path": "distortion.modules.DistortionModule", "storage": "png", "refine_steps": 0}
    old["hyper_parameters"] = hparams
    old["state_dict"] = {k.removeprefix("objective."): v for k, v in current["state_dict"].items()}
    assert "multiplier.value" in old["state_dict"] and "alpha" in hparams and "tau" in hparams
    torch.save(old, tmp_path / "old.ckpt")
    module = load_generator_module(tmp_path / "old.ckpt")
    assert module.objective.budget.tau == current["hyper_parameters"]["budget"]["tau"]
    assert module.objective.budget.constraint == "lagrangian" and module.enrolment.storage == "none"
    for key, value in current["state_dict"].items():
        assert torch.equal(module.state_dict()[key], value), key


def test_checkpoint_restores_g_and_the_frozen_backbone(tiny) -> None:
    from distortion.modules.generator import load_generator_module

    module = load_generator_module(tiny["ckpt"])
    assert isinstance(module.embedding, DlibResNet) and not module.embedding.training
    reference = DlibResNet()
    for key, value in reference.state_dict().items():
        assert torch.equal(module.embedding.state_dict()[key], value), key


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
    module = GeneratorModule(carrier, embedding=RandomProjection(), image=ImageTerm("decorrelation"),
                             budget=Budget(tau=0.01, beta=1.0, constraint="lagrangian"))  # fmt: skip
    held = [k for k in module.state_dict() if not k.startswith(("generator.", "objective."))]
    assert held == ["embedding.weight"]  # F is held once, by the module; G never holds it
    train = MNIST(str(DATA), train=True).data[:1024].unsqueeze(1).float() / 255
    optimizer = torch.optim.Adam(carrier.parameters(), lr=3e-3)
    module.train()
    for _ in range(150):
        terms = module.loss_terms(train[torch.randint(0, 1024, (64,))])
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        module.objective.update(terms["violation"])
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
