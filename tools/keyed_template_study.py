"""The template-level study behind docs/keyed.md: every keyed transform on LFW with exact carriers.

A carrier that reaches its target exactly stores ``T_k(F(x))``; this study scores that ideal store
(what the decoder or the refinement then has to approach) for each transform:

- View 2 10-fold accuracy of the deployment (stored under key 1 against keyed photos), beside F's;
- the keyed sections of :func:`distortion.reporting.keyed_report.keyed_sections` on View 1's DevTest pairs
  (people the transform never saw): replay, linkage across keys, the insider's curve, revocation.

F's embeddings of every LFW chip are computed once into ``<cache>/templates_<backbone>.pt``.

    python tools/keyed_template_study.py --out docs/keyed_templates.json
    python tools/keyed_template_study.py --out docs/keyed_templates.json --only whitened_rotation_64_unkeyed
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonargparse
import torch

from distortion.deployment.keyed_templates import (
    DiscriminantRotation,
    KeyedRotation,
    SignProjection,
    TemplateTransform,
    WhitenedRotation,
)
from distortion.deployment.keys import generate_key
from distortion.faces.lfw_pairs import training_images
from distortion.faces.lfw_protocol import LFWProtocol
from distortion.faces.templates import cached_templates
from distortion.paths import default_cache_dir, lfw_root
from distortion.reporting.keyed_report import KeyedTemplates, keyed_sections
from distortion.reporting.plots import plot_insider


def pairs_tensors(folds, emb):
    """Both photos' embeddings, whether they are one person, and both identities (numbered by name)."""
    pairs = [p for fold in folds for p in fold]
    a = torch.stack([emb[p.images[0]] for p in pairs])
    b = torch.stack([emb[p.images[1]] for p in pairs])
    same = torch.tensor([p.same for p in pairs])
    names = sorted({p.name1 for p in pairs} | {p.name2 for p in pairs})
    ya, yb = (torch.tensor([names.index(getattr(p, side)) for p in pairs]) for side in ("name1", "name2"))
    return a, b, same, ya, yb


def study(transform: TemplateTransform, emb: dict, protocol: LFWProtocol, train_keys: list, seed: int) -> dict:
    torch.manual_seed(seed)
    key1, key2 = generate_key(), generate_key()
    train = torch.stack([emb[k] for k in train_keys])
    names = sorted({k[0] for k in train_keys})
    labels = torch.tensor([names.index(k[0]) for k in train_keys])
    transform.fit(train, labels)
    a, b, same, ya, yb = pairs_tensors(protocol.dev_test, emb)
    t = KeyedTemplates(train, labels, transform(train, key1), transform(train, key2), a, b, same,
                       transform(a, key1), transform(b, key1), transform(b, key2), ya, yb)  # fmt: skip
    report = keyed_sections(t, transform, key1, key2)
    keys = list(emb)
    keyed1 = dict(zip(keys, transform.matched(transform(torch.stack([emb[k] for k in keys]), key1), key1)))
    view2 = protocol.report(keyed1, keyed1)["view2"]
    f_view2 = protocol.report(emb)["view2"]
    report["view2"] = {"deploy_accuracy": view2["accuracy_mean"], "deploy_std": view2["accuracy_std"],
                       "f_accuracy": f_view2["accuracy_mean"], "deploy_eer": view2["eer"],
                       "f_eer": f_view2["eer"]}  # fmt: skip
    return report


UNKEYED = (32, 48, 64, 96)
TITLES = {
    "rotation_all": "keyed rotation, all 128 axes",
    **{f"whitened_rotation_{k}": f"whitened rotation, {k} axes, stored compared" for k in (16, 24, 32, 48, 64)},
    **{f"whitened_rotation_{k}_unkeyed": f"whitened rotation, {k} axes, key-undoing matcher" for k in UNKEYED},
    **{f"discriminant_rotation_{k}": f"discriminant rotation, {k} axes" for k in (32, 48, 64)},
    **{f"sign_projection_{a}x{b}": f"sign projection, {a} axes, {b} bits" for a, b in ((32, 64), (64, 64), (64, 128),
                                                                                      (128, 128))},
}  # fmt: skip
ATTACKERS = ("direct", "covariance_alignment", "ica", "trained_linker")


def markdown_table(results: dict) -> str:
    """docs/keyed.md's table of the study: one row per transform."""
    first = next(iter(results.values()))
    f_acc, f_eer = 100 * first["view2"]["f_accuracy"], 100 * first["deployment"]["original_eer"]
    lines = [
        f"| transform | View 2 deploy accuracy (F {f_acc:.2f}%) | DevTest deploy EER (F {f_eer:.2f}%) | carrier vs "
        "carrier false accepts | replay accepted | D_sys (floor) direct / covariance / ICA / trained linker | linking "
        "EER direct / covariance / ICA / trained | insider EER at 10 / 100 / 1,000 pairs | survives the insider (EER "
        ">= 20%) up to | old carrier, new key | (i)-(iii) within 0.05 of floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        link, dep, ins = r["linkage"], r["deployment"], r["insider"]
        dsys = " / ".join(f"{link[a]['d_sys']:.2f} ({link[a]['d_sys_floor']:.2f})" for a in ATTACKERS[:3])
        eers = " / ".join(f"{100 * link[a]['eer']:.0f}" for a in ATTACKERS[:3])
        lines.append(
            f"| {TITLES.get(name, name)} | {100 * r['view2']['deploy_accuracy']:.2f}% | "
            f"{100 * dep['deploy_eer']:.2f}% | "
            f"{100 * dep['carrier_vs_carrier_false_accept']:.1f}% | {100 * r['replay']['accepted']:.1f}% | "
            f"{dsys} / {link['trained_linker']['d_sys']:.2f} | {eers} / {100 * link['trained_linker']['eer']:.1f}% | "
            f"{100 * ins['eer_10']:.1f} / {100 * ins['eer_100']:.1f} / {100 * ins['eer_1000']:.1f}% | "
            f"{ins['survives_up_to']} | {100 * r['revocation']['old_carrier_accepted_genuine']:.1f}% | "
            f"{'yes' if link['within_floor_0.05'] else 'no'} |"
        )
    return "\n".join(lines)


def main(
    backbone: str = "dlib", out: str = "runs/keyed_template_study.json", seed: int = 0, table: bool = False,
    only: list[str] | None = None,
) -> None:  # fmt: skip
    """Study keyed transforms on exact LFW templates.

    Args:
        backbone: F, a face backbone name.
        out: the JSON file of the results.
        seed: seed of the keys and the insider's pairs.
        table: print the markdown table of an existing ``out``, run nothing.
        only: run these transforms only, updating their rows of an existing ``out``.
    """
    out_path = Path(out)
    if table:
        print(markdown_table(json.loads(out_path.read_text())))
        return
    protocol = LFWProtocol.load(lfw_root())
    emb = cached_templates(default_cache_dir("dlib" if backbone == "dlib" else "facenet"), backbone)
    train_keys = training_images(emb, protocol.root)
    d = next(iter(emb.values())).shape[0]
    candidates = {
        "rotation_all": KeyedRotation(d),
        "whitened_rotation_16": WhitenedRotation(d, 16, "stored"),
        "whitened_rotation_24": WhitenedRotation(d, 24, "stored"),
        "whitened_rotation_32": WhitenedRotation(d, 32, "stored"),
        "whitened_rotation_48": WhitenedRotation(d, 48, "stored"),
        "whitened_rotation_64": WhitenedRotation(d, 64, "stored"),
        **{f"whitened_rotation_{k}_unkeyed": WhitenedRotation(d, k, "unkeyed") for k in UNKEYED},
        "discriminant_rotation_32": DiscriminantRotation(d, 32),
        "discriminant_rotation_48": DiscriminantRotation(d, 48),
        "discriminant_rotation_64": DiscriminantRotation(d, 64),
        "sign_projection_32x64": SignProjection(d, 32, 64),
        "sign_projection_64x64": SignProjection(d, 64, 64),
        "sign_projection_64x128": SignProjection(d, 64, 128),
        "sign_projection_128x128": SignProjection(d, 128, 128),
    }
    unknown = set(only or ()) - set(candidates)
    if unknown:
        raise SystemExit(f"--only: unknown transforms {sorted(unknown)}; known: {sorted(candidates)}")
    results = json.loads(out_path.read_text()) if only and out_path.is_file() else {}
    for name, transform in candidates.items():
        if only and name not in only:
            continue
        results[name] = study(transform, emb, protocol, train_keys, seed)
        r = results[name]
        print(
            f"{name}: view2 {100 * r['view2']['deploy_accuracy']:.2f} (F {100 * r['view2']['f_accuracy']:.2f}) "
            f"replay {100 * r['replay']['accepted']:.2f}% link direct {r['linkage']['direct']['d_sys']:.3f} "
            f"cov {r['linkage']['covariance_alignment']['d_sys']:.3f} ica {r['linkage']['ica']['d_sys']:.3f} "
            f"trained {r['linkage']['trained_linker']['d_sys']:.3f} floor {r['linkage']['direct']['d_sys_floor']:.3f} "
            f"insider survives {r['insider']['survives_up_to']} revoc "
            f"{100 * r['revocation']['old_carrier_accepted_genuine']:.2f}%",
            flush=True,
        )
    results = {name: results[name] for name in candidates if name in results}  # the table's order
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    curves = {name: {int(k[4:]): v for k, v in r["insider"].items() if k.startswith("eer_")}
              for name, r in results.items()}  # fmt: skip
    plot_insider(curves, out.with_suffix(".insider.png"), "LFW DevTest, exact keyed templates")
    print(markdown_table(results))


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
