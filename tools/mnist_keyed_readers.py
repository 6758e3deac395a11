"""What readers read of MNIST keyed carriers under each of several keys (docs/keyed.md).

For each key file: the stored carriers (PNG) of the first ``--images`` official test digits; reader 1 (a
digit classifier that never saw a carrier) and the pixel nearest-neighbour reader on them as they are; and an
insider who holds ``n`` labelled carriers of that key and relabels each reader's answer by the true digit it
most often stood for among them (a key-specific map from what the reader sees to the digit). A reader that
reads chance as it is but far more through that map reads carriers that look like other digits.

    python tools/mnist_keyed_readers.py --ckpt runs/mnist_keyed_carrier/checkpoints/last.ckpt \\
        --keys "[$(ls runs/keyed/mnist_site.key runs/keyed/mnist_other_*.key | paste -sd,)]"
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonargparse
import torch

from distortion.datamodules import MNISTDataModule
from distortion.deployment.enrolment import Enrolment
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.readers import nearest_neighbour_labels, relabelled_accuracy
from distortion.modules.base import load_frozen
from distortion.modules.reader import ReaderModule


def main(
    ckpt: str, keys: list[str], reader_ckpt: str = "runs/mnist_reader/checkpoints/best.ckpt", images: int = 2000,
    reference: int = 20000, out: str = "runs/mnist_keyed_readers.json",
) -> None:  # fmt: skip
    """Read MNIST keyed carriers under each key.

    Args:
        ckpt: the keyed carrier's checkpoint.
        keys: key files.
        reader_ckpt: reader 1's checkpoint.
        images: official test digits whose carriers are read.
        reference: training digits of the pixel nearest-neighbour reader.
        out: the JSON file of the results.
    """
    data = MNISTDataModule()
    data.setup("test")
    x, y = data.datasets["test"].images[:images], data.datasets["test"].labels[:images]
    reference, reference_labels = data.reference_images(reference)
    reader = load_frozen(ReaderModule, reader_ckpt, "net")
    results = {}
    for key in keys:
        enrolment = Enrolment(storage="png", key=key)
        distorter = load_deployment(ModelSource(ckpt), torch.device("cpu"), enrolment).distorter
        with torch.no_grad():
            carriers = torch.cat([distorter(batch) for batch in x.split(500)])
            read = reader(carriers).argmax(1)
        nearest = nearest_neighbour_labels(reference, reference_labels, carriers)
        row = {"reader": float((read == y).double().mean()), "pixel_1nn": float((nearest == y).double().mean())}
        for leaked in (10, 100, 1000):
            row[f"reader_relabelled_{leaked}"] = relabelled_accuracy(read, y, leaked)
            row[f"pixel_1nn_relabelled_{leaked}"] = relabelled_accuracy(nearest, y, leaked)
        results[distorter.fingerprint] = row
        print(distorter.fingerprint, {k: round(100 * v, 1) for k, v in row.items()}, flush=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
