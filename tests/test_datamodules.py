"""The datamodules on real MNIST and a tiny real LFW: splits, pairs, batches, the resumable sampler."""

from __future__ import annotations

import json

import pytest
import torch

from distortion.cli import main
from distortion.data.batches import PairBatch, TripletBatch
from distortion.datamodules import LFWDataModule, MNISTDataModule
from distortion.datamodules.pairs import make_verification_pairs
from distortion.datamodules.sampler import ResumableRandomSampler
from distortion.faces.lfw_pairs import read_pairs, training_images
from tests.conftest import DATA
from tests.lfw_fixtures import LFW


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
    batch = next(iter(datamodule.val_dataloader()))
    assert isinstance(batch, PairBatch) and batch._fields == ("x_a", "y_a", "x_b", "y_b", "same", "fold")
    assert batch.x_a.shape == batch.x_b.shape == (64, 1, 28, 28)
    assert torch.equal(batch.same.bool(), batch.y_a == batch.y_b) and not batch.fold.any()
    train = next(iter(datamodule.train_dataloader()))
    assert isinstance(train, TripletBatch) and train.anchor.shape == (64, 1, 28, 28)


def test_missing_data_root_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "MNIST/raw/train-images-idx3-ubyte")):
        MNISTDataModule(str(tmp_path))


def test_missing_data_root_without_config_or_env(monkeypatch) -> None:
    monkeypatch.delenv("DISTORTION_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="set DISTORTION_DATA"):
        MNISTDataModule(None)


def test_training_people_never_appear_in_dev_test() -> None:
    dev_test = read_pairs(LFW / "pairsDevTest.txt")
    names = sorted(p.name for p in (LFW / "lfw-deepfunneled").iterdir())
    images = [(name, number) for name in names for number in (1, 2)]
    train_images = training_images(reversed(images), LFW)
    train = {name for name, _ in train_images}
    held_out = {n for fold in dev_test for p in fold for n in (p.name1, p.name2)}
    assert train and not train & held_out and train | held_out == set(names)
    assert train_images == sorted(k for k in images if k[0] in train)  # every image of theirs, sorted


def test_datamodule_splits_and_batches(tiny) -> None:
    dm = LFWDataModule(data_dir=str(tiny["out"] / "data"), cache_dir=str(tiny["out"] / "cache"), batch_size=4)
    dm.setup()
    dev_test_people = {
        n for fold in read_pairs(tiny["root"] / "pairsDevTest.txt") for p in fold for n in (p.name1, p.name2)
    }
    assert dm.train_people and not set(dm.train_people) & dev_test_people
    assert len(dm.datasets["train"]) == 2 * len(dm.train_people)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 150, 150) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    x_a, y_a, x_b, y_b, same, fold = next(iter(dm.val_dataloader()))
    assert same.tolist() == [1, 0, 1, 0] and fold.tolist() == [0, 0, 0, 0]  # matched and mismatched interleaved
    assert torch.equal(same.bool(), y_a == y_b)
    test = dm.datasets["test"]
    assert len(test) == 20 and sorted({int(item[5]) for item in test}) == list(range(10))
    # training crops and flips are random, evaluation images are the cached chips as they are
    assert not torch.equal(dm.datasets["train"][0][0], dm.datasets["train"][0][0])
    assert torch.equal(dm.datasets["val"][0][0], dm.datasets["val"][0][0])


def test_lightning_test_stage_scores_view_2(tiny) -> None:
    main(["test", "--config", str(tiny["config"]), "--ckpt_path", str(tiny["ckpt"])])
    run = sorted((tiny["out"] / "gen").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    report = json.loads((run / "report.json").read_text())
    assert report["test/orig/eer"] <= 0.2 and 0 <= report["test/deploy/eer"] <= 1
    assert "test/local_content_change_pct" in report and (run / "grid.png").is_file()


def test_the_sampler_draws_one_permutation_per_epoch_and_skips_on_resume() -> None:
    sampler = ResumableRandomSampler(100, seed=5)
    first = list(sampler)
    assert sorted(first) == list(range(100)) and list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == list(range(100))
    sampler.skip(30)
    assert list(sampler) == second[30:]  # where a run killed after 30 samples of epoch 1 resumes
    assert list(sampler) == second  # the skip applies once
    with pytest.raises(ValueError, match="skip"):
        sampler.skip(101)


def test_reference_images_are_training_digits_only(datamodule: MNISTDataModule) -> None:
    images, labels = datamodule.reference_images(3000)
    assert images.shape == (3000, 1, 28, 28) and len(labels) == 3000
    assert len(_key(images) & _key(datamodule.datasets["val"].images)) <= 5
    assert _key(images) <= _key(datamodule.datasets["train"].images)
