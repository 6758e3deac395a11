"""Lightning callbacks that measure and report: distortion, verification, readability (the project's readers and
pixel nearest neighbours), collapse, images, report; and the keyed deployment's transform and threshold."""

from distortion.callbacks.collapse_guard import CollapseGuard
from distortion.callbacks.content_metrics import ContentMetrics
from distortion.callbacks.image_grid import ImageGrid
from distortion.callbacks.keyed_deployment import KeyedDeployment
from distortion.callbacks.pixel_reader import PixelNearestNeighbour
from distortion.callbacks.reader_accuracy import ReaderAccuracy
from distortion.callbacks.report import TestReport
from distortion.callbacks.verification_metrics import VerificationMetrics

__all__ = [
    "CollapseGuard",
    "ContentMetrics",
    "ImageGrid",
    "KeyedDeployment",
    "PixelNearestNeighbour",
    "ReaderAccuracy",
    "TestReport",
    "VerificationMetrics",
]
