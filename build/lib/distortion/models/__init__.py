"""Networks as plain ``nn.Module``s: embedding nets F, the generators G (U-Net, carrier; all called ``G(x, F(x))``),
digit classifiers."""

from distortion.models.carrier import CarrierGenerator
from distortion.models.classifier import ConvClassifier, VGGClassifier
from distortion.models.embedding import ConvEmbedding, MLPEmbedding
from distortion.models.generator import Generator
from distortion.models.unet import UNet

__all__ = ["CarrierGenerator", "ConvClassifier", "ConvEmbedding", "Generator", "MLPEmbedding", "UNet", "VGGClassifier"]
