"""Faces: alignment into chips, the chip cache, face detectors, and LFW's protocol."""
