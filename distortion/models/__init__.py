"""Networks as plain ``nn.Module``s: embedding nets F, the generators G (U-Net, carrier), digit classifiers."""

from distortion.models.carrier import CarrierGenerator
from distortion.models.classifier import ConvClassifier, VGGClassifier
from distortion.models.embedding import ConvEmbedding, MLPEmbedding
from distortion.models.unet import UNet

__all__ = ["CarrierGenerator", "ConvClassifier", "ConvEmbedding", "MLPEmbedding", "UNet", "VGGClassifier"]
