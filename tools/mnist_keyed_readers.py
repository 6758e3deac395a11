"""What readers read of MNIST keyed carriers under each of several keys (docs/keyed.md).

For each key file: the stored carriers (PNG) of the first ``--images`` official test digits; reader 1 (a
digit classifier that never saw a carrier) and the pixel nearest-neighbour reader on them as they are; and an
insider who holds ``n`` labelled carriers of that key and relabels each reader's answer by the true digit it
most often stood for among them (a key-specific map from what the reader sees to the digit). A reader that
reads chance as it is but far more through that map reads carriers that look like other digits.

    python tools/mnist_keyed_readers.py --ckpt runs/mnist_keyed_carrier/checkpoints/last.ckpt \\
        --keys runs/keyed/mnist_site.key runs/keyed/mnist_other_*.key
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from distortion.datamodules import MNISTDataModule

from distortion.deployment.enrolment import Enrolment
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.readers import nearest_neighbour_labels, relabelled_accuracy
from distortion.modules.base import load_frozen
from distortion.modules.reader import ReaderModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--keys", nargs="+", required=True)
    parser.add_argument("--reader_ckpt", default="runs/mnist_reader/checkpoints/best.ckpt")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--reference", type=int, default=20000)
    parser.add_argument("--out", default="runs/mnist_keyed_readers.json")
    args = parser.parse_args()
    data = MNISTDataModule()
    data.setup("test")
    x, y = data.datasets["test"].images[: args.images], data.datasets["test"].labels[: args.images]
    reference, reference_labels = data.reference_images(args.reference)
    reader = load_frozen(ReaderModule, args.reader_ckpt, "net")
    results = {}
    for key in args.keys:
        enrolment = Enrolment(storage="png", key=key)
        distorter = load_deployment(ModelSource(args.ckpt), torch.device("cpu"), enrolment).distorter
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
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
