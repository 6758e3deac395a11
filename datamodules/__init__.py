"""LightningDataModules: images for G, triplets for F, seeded verification pairs for evaluation."""

from distortion.datamodules.lfw import LFWDataModule
from distortion.datamodules.mnist import MNISTDataModule

__all__ = ["LFWDataModule", "MNISTDataModule"]
