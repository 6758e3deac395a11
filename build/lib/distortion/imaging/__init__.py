"""Pixels: how images are held (tensors and uint8 chips), stored (PNG, JPEG, resize), augmented, and compared."""
