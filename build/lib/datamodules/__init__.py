"""LightningDataModules: images for G, triplets for F, seeded verification pairs for evaluation."""

from datamodules.lfw import LFWDataModule
from datamodules.mnist import MNISTDataModule

__all__ = ["LFWDataModule", "MNISTDataModule"]
