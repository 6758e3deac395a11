"""The MNIST side of docs/keyed.md's template study: each keyed transform on exact templates of digits.

A keyed carrier that reaches its target exactly stores ``T_k(F(x))``; this scores that ideal store on the
official test pairs (the ones ``distortion test`` scores): the deployment's EER (stored under the key against
keyed probes, compared as the transform's matcher compares them) beside F's, on the validation pairs (to
choose a transform by) and on the test pairs, so that a trained carrier's EER splits into what the
transform costs and what the decoder adds. F is the demo's
(``runs/mnist_embedding_mlp``); transforms are fitted on training digits outside the validation split.

    python tools/mnist_keyed_template_study.py --out runs/mnist_keyed_template_study.json
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonargparse
import torch

from distortion.datamodules import MNISTDataModule
from distortion.deployment.keyed_templates import (
    DiscriminantRotation,
    KeyedRotation,
    SignProjection,
    TemplateTransform,
    WhitenedRotation,
)
from distortion.deployment.keys import generate_key
from distortion.metrics.verification import pair_scores, view_metrics
from distortion.modules.embedding import load_embedding


@torch.no_grad()
def embed(net: torch.nn.Module, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """F of ``images`` in batches (float64)."""
    return torch.cat([net(images[i : i + batch]) for i in range(0, len(images), batch)]).double()


def pairs_eer(emb: torch.Tensor, pairs: torch.Tensor) -> float:
    """EER of template ``i`` against template ``j`` over the pairs ``(i, j, same)``."""
    return view_metrics(pair_scores(emb[pairs[:, 0]], emb[pairs[:, 1]]), pairs[:, 2].bool())["eer"]


def main(
    embedding_ckpt: str = "runs/mnist_embedding_mlp/checkpoints/best.ckpt", fit_images: int = 20000, keys: int = 5,
    out: str = "runs/mnist_keyed_template_study.json",
) -> None:  # fmt: skip
    """Study keyed transforms on exact MNIST templates.

    Args:
        embedding_ckpt: F's checkpoint.
        fit_images: training digits the transforms are fitted on.
        keys: keys per transform (mean and spread reported).
        out: the JSON file of the results.
    """
    torch.manual_seed(0)
    net = load_embedding(embedding_ckpt)
    data = MNISTDataModule()
    data.setup("fit")
    data.setup("test")
    train = data.datasets["train"]
    fit_emb, fit_labels = embed(net, train.images[:fit_images]), train.labels[:fit_images]
    splits = {name: (embed(net, data.datasets[name].images), data.datasets[name].pairs) for name in ("val", "test")}
    d = fit_emb.shape[1]
    results: dict[str, dict] = {"f": {}}
    for split, (emb, pairs) in splits.items():
        results["f"][f"{split}_eer"] = pairs_eer(emb, pairs)
    print(f"F: val EER {100 * results['f']['val_eer']:.2f}%, test EER {100 * results['f']['test_eer']:.2f}%")
    candidates: dict[str, TemplateTransform] = {"rotation_all": KeyedRotation(d)}
    for k in range(6, d + 1):
        candidates[f"whitened_rotation_{k}"] = WhitenedRotation(d, k, "stored")
        candidates[f"whitened_rotation_{k}_unkeyed"] = WhitenedRotation(d, k, "unkeyed")
    for k in range(6, d):
        candidates[f"discriminant_rotation_{k}"] = DiscriminantRotation(d, k)
    candidates[f"sign_projection_{d}x{d}"] = SignProjection(d, d, d)
    for name, transform in candidates.items():
        transform.fit(fit_emb, fit_labels)
        results[name] = {}
        for split, (emb, pairs) in splits.items():
            # stored T_k(F(x_i)) against the keyed probe T_k(F(x_j)), as the matcher compares them; fresh keys
            keys = [generate_key() for _ in range(keys)]
            eers = torch.tensor([pairs_eer(transform.matched(transform(emb, k), k), pairs) for k in keys])
            results[name][f"{split}_eer"], results[name][f"{split}_eer_std"] = float(eers.mean()), float(eers.std())
        r = results[name]
        print(f"{name}: deployment EER val {100 * r['val_eer']:.2f}% test {100 * r['test_eer']:.2f}% "
              f"(+- {100 * r['test_eer_std']:.2f} over {keys} keys)", flush=True)  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
