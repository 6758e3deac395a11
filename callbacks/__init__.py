"""Lightning callbacks that measure and report: distortion, verification, readability, images, report."""

from callbacks.distortion_metrics import DistortionMetrics
from callbacks.image_grid import ImageGrid
from callbacks.reader_accuracy import ReaderAccuracy
from callbacks.report import TestReport
from callbacks.verification import VerificationMetrics

__all__ = ["DistortionMetrics", "ImageGrid", "ReaderAccuracy", "TestReport", "VerificationMetrics"]
