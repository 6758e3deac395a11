"""distortion: images a person cannot recognise that a recognition model still identifies.

An implementation of "Unrecognizable Yet Identifiable: Image Distortion with Preserved Embeddings"
(Zakharov, Kuznetsov, Frontoni, arXiv 2401.15048) on PyTorch Lightning.
"""

__version__ = "0.1.0"
