"""Lightning callbacks that measure and report: distortion, verification, readability (the project's readers and
pixel nearest neighbours), collapse, images, report."""

from callbacks.collapse_guard import CollapseGuard
from callbacks.content_metrics import ContentMetrics
from callbacks.image_grid import ImageGrid
from callbacks.pixel_reader import PixelNearestNeighbour
from callbacks.reader_accuracy import ReaderAccuracy
from callbacks.report import TestReport
from callbacks.verification_metrics import VerificationMetrics

__all__ = [
    "CollapseGuard",
    "ContentMetrics",
    "ImageGrid",
    "PixelNearestNeighbour",
    "ReaderAccuracy",
    "TestReport",
    "VerificationMetrics",
]
