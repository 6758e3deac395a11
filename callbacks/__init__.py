"""Lightning callbacks that measure and report: distortion, verification, readability, collapse, images, report."""

from callbacks.collapse_guard import CollapseGuard
from callbacks.distortion_metrics import DistortionMetrics
from callbacks.image_grid import ImageGrid
from callbacks.reader_accuracy import ReaderAccuracy
from callbacks.report import TestReport
from callbacks.verification import VerificationMetrics

__all__ = ["CollapseGuard", "DistortionMetrics", "ImageGrid", "ReaderAccuracy", "TestReport", "VerificationMetrics"]
