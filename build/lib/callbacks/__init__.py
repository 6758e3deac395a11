"""Lightning callbacks that measure and report: distortion, verification, readability, collapse, images, report."""

from callbacks.collapse_guard import CollapseGuard
from callbacks.content_metrics import ContentMetrics
from callbacks.image_grid import ImageGrid
from callbacks.reader_accuracy import ReaderAccuracy
from callbacks.report import TestReport
from callbacks.verification_metrics import VerificationMetrics

__all__ = ["CollapseGuard", "ContentMetrics", "ImageGrid", "ReaderAccuracy", "TestReport", "VerificationMetrics"]
