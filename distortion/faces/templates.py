"""F of every chip of an aligned-chip cache, computed once and kept beside the cache as ``templates_<backbone>.pt``:
the studies of docs/keyed.md and docs/store.md and the open-set tools read them instead of running F again."""

from __future__ import annotations

from pathlib import Path

import torch

from distortion.backbones import create_backbone
from distortion.faces.chip_cache import ChipCache
from distortion.faces.lfw_protocol import ImageKey
from distortion.precision import autocast

__all__ = ["cached_templates"]


@torch.no_grad()
def cached_templates(cache_dir: str | Path, backbone: str, batch_size: int = 64) -> dict[ImageKey, torch.Tensor]:
    """``{(name, number): F(chip)}`` for every chip of the cache at ``cache_dir``, F the registered ``backbone``
    (bfloat16 where the CPU computes it natively, :mod:`distortion.precision`); read from
    ``<cache_dir>/templates_<backbone>.pt`` when it exists, else computed and written there."""
    path = Path(cache_dir) / f"templates_{backbone}.pt"
    if path.is_file():
        return torch.load(path)
    cache, f = ChipCache.load(Path(cache_dir)), create_backbone(backbone).eval().requires_grad_(False)
    rows = cache.rows()
    keys = sorted(rows)
    out = {}
    for s, batch in enumerate(cache.batches([rows[k] for k in keys], batch_size)):
        with autocast("cpu"):
            emb = f(batch.float()).float()
        out.update(zip(keys[s * batch_size : (s + 1) * batch_size], emb))
        print(f"\rF: {len(out)}/{len(keys)}", end="", flush=True)
    torch.save(out, path)
    print()
    return out
