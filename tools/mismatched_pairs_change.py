"""How much two photos of different people differ by the report's measures (docs/lfw.md: "Third round").

Content change, registered and local content change, and the structure distance between the two
aligned chips of each mismatched DevTest pair: what a G that swapped every face for somebody
else's would score. Usage: ``DISTORTION_DATA=../shared/data python tools/mismatched_pairs_change.py``.
"""

import jsonargparse
import torch

from distortion.datamodules import LFWDataModule
from distortion.metrics.content import CONTENT_STATISTICS
from distortion.objective.image_distances import structure_decorrelation_distance


def main() -> None:
    """Print the change between the two photos of each mismatched DevTest pair."""
    dm = LFWDataModule()
    dm.prepare_data()
    dm.setup("validate")
    pairs = [item for item in dm.datasets["val"] if item.same == 0]
    a, b = torch.stack([p.x_a for p in pairs]), torch.stack([p.x_b for p in pairs])
    print(f"{len(a)} mismatched DevTest pairs")
    names = ("content_change_pct", "registered_content_change_pct", "local_content_change_pct")
    measures = {k: CONTENT_STATISTICS[k] for k in names}
    measures["structure_decorrelation"] = structure_decorrelation_distance
    for name, fn in measures.items():
        v = torch.cat([fn(a[s : s + 50], b[s : s + 50]) for s in range(0, len(a), 50)])
        low, high = v.quantile(torch.tensor([0.05, 0.95])).tolist()
        print(f"{name}: mean {v.mean():.3f}, 5th-95th percentile {low:.3f}-{high:.3f}")


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
