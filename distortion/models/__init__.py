"""Networks as plain ``nn.Module``s: embedding nets F, the generator G, digit classifiers."""

from distortion.models.classifier import ConvClassifier, VGGClassifier
from distortion.models.embedding import ConvEmbedding, MLPEmbedding
from distortion.models.unet import UNet

__all__ = ["ConvClassifier", "ConvEmbedding", "MLPEmbedding", "UNet", "VGGClassifier"]
