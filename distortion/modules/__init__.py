"""Thin LightningModules that wire networks and losses together.

Every module's ``validation_step`` and ``test_step`` receive verification pairs
(:class:`~distortion.data.batches.PairBatch`) and return a dict that the callbacks read:

- ``x_a``, ``y_a``, ``same``: the enrolment images, their labels and the pair labels;
- ``emb_a``, ``emb_b``: F on the originals (embedding and distortion modules);
- ``g_a``, ``emb_ga``, ``emb_gb``: G's images and F on G's images (distortion module only); keyed, ``probe_b``
  (the keyed probe) too, and all three as the matcher compares them (:meth:`Distorter.matched`);
- ``logits_a``: class scores (reader module only);
- ``fold``: the protocol fold of each pair (distortion module).
"""

from distortion.modules.embedding import EmbeddingModule
from distortion.modules.generator import GeneratorModule
from distortion.modules.reader import ReaderModule

__all__ = ["GeneratorModule", "EmbeddingModule", "ReaderModule"]
