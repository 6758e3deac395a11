import pytest
import torch

from datamodules import MNISTDataModule
from datamodules.pairs import make_verification_pairs
from tests.conftest import DATA


@pytest.fixture(scope="module")
def datamodule() -> MNISTDataModule:
    dm = MNISTDataModule(str(DATA), train_items="triplets", val_size=2000)
    dm.setup("fit")
    dm.setup("test")
    return dm


def _key(images: torch.Tensor) -> set[bytes]:
    return {bytes(img.flatten().mul(255).byte().numpy()) for img in images}


def test_validation_is_carved_out_of_training_and_test_is_official(datamodule: MNISTDataModule) -> None:
    train, val, test = datamodule.datasets["train"], datamodule.datasets["val"], datamodule.datasets["test"]
    assert len(train) == 58000 and len(val) == 2000 and len(test) == 10000
    overlap = _key(val.images) & _key(train.images[:20000])
    # MNIST has a handful of exact duplicate images; a shared split would share ~700 here
    assert len(overlap) <= 5


def test_pairs_are_seeded_half_genuine_and_cover_every_image(datamodule: MNISTDataModule) -> None:
    pairs = datamodule.datasets["test"].pairs
    i, j, same = pairs.T
    labels = datamodule.datasets["test"].labels
    assert torch.equal(i, torch.arange(10000))
    assert same.sum() == 5000
    assert torch.equal(labels[i] == labels[j], same.bool())
    assert (i != j).all()
    assert torch.equal(pairs, make_verification_pairs(labels, seed=2))


def test_triplets_have_matching_positives_and_other_negatives(datamodule: MNISTDataModule) -> None:
    train = datamodule.datasets["train"]
    for k in range(50):
        a, p, n, ya, yn = train[k]
        assert a.shape == (1, 28, 28) and 0 <= a.min() and a.max() <= 1
        assert ya != yn
        same_label = train.images[train.by_label[int(ya)]]
        neg_label = train.images[train.by_label[int(yn)]]
        assert (same_label == p).flatten(1).all(1).any()
        assert (neg_label == n).flatten(1).all(1).any()


def test_batches_have_the_documented_layout(datamodule: MNISTDataModule) -> None:
    x_a, y_a, x_b, y_b, same = next(iter(datamodule.val_dataloader()))
    assert x_a.shape == x_b.shape == (64, 1, 28, 28)
    assert torch.equal(same.bool(), y_a == y_b)


def test_missing_data_root_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "MNIST/raw/train-images-idx3-ubyte")):
        MNISTDataModule(str(tmp_path))


def test_missing_data_root_without_config_or_env(monkeypatch) -> None:
    monkeypatch.delenv("DISTORTION_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="set DISTORTION_DATA"):
        MNISTDataModule(None)
