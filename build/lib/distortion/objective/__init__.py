"""The method's loss: image distances, the embedding budget (hinge, Lagrange multiplier), the perceptual term."""

from distortion.objective.objective import Budget, ImageTerm, Objective, PerceptualTerm

__all__ = ["Budget", "ImageTerm", "Objective", "PerceptualTerm"]
