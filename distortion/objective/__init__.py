"""The method's loss: image distances, the embedding budget (hinge, Lagrange multiplier), the perceptual term."""
