"""Keyed carriers on a tiny real LFW: training with random keys, a key that never reaches a file, the
operating threshold in the checkpoint, one key matching and two keys not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from distortion.cli import main
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keys import KeyMismatchError, generate_key, load_key, write_key
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.verification import pair_scores
from tests.conftest import make_config
from tests.keys import fixed_key


@pytest.fixture(scope="module")
def keyed(tiny, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("keyed")
    key_path = write_key(fixed_key("site"), out / "site.key")
    path = make_config(
        "lfw_keyed_carrier.yaml",
        out,
        "keyed",
        enrolment={"storage": "png", "key": str(key_path)},
    )
    cfg = yaml.safe_load(path.read_text())
    deployment = next(c for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("KeyedDeployment"))
    deployment["init_args"] = {"fit_images": 16, "calibration_images": 16}
    cfg["model"]["init_args"]["template_transform"]["init_args"]["components"] = 8
    cfg["data"]["init_args"].update(data_dir=str(tiny["root"].parent), cache_dir=str(tiny["out"] / "cache"),
                                    batch_size=4)  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    main(["fit", "--config", str(path), "--trainer.max_steps", "3", "--trainer.limit_val_batches", "1",
          "--trainer.num_sanity_val_steps", "0"])  # fmt: skip
    return {"out": out, "key": key_path, "ckpt": out / "keyed" / "checkpoints" / "last.ckpt", "tiny": tiny}


def _written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix != ".key"]


def test_no_key_bytes_in_any_file_the_run_wrote(keyed) -> None:
    secret = load_key(keyed["key"])._secret
    needles = (secret, secret.hex().encode(), secret.hex().upper().encode())
    files = _written_files(keyed["out"])
    assert any(p.suffix == ".ckpt" for p in files) and len(files) > 3
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in needles), path


def test_checkpoint_holds_the_fitted_transform_and_threshold(keyed) -> None:
    state = torch.load(keyed["ckpt"], map_location="cpu", weights_only=False)["state_dict"]
    assert bool(state["template_transform.fitted"])
    assert 0 < float(state["operating_threshold"]) < 1


def test_one_key_matches_two_keys_do_not_and_replay_is_rejected(keyed, tiny) -> None:
    from distortion.faces.chip_cache import ChipCache

    cache = ChipCache.load(tiny["out"] / "cache")
    x = next(cache.batches(list(range(8)), 8))
    enrolment = Enrolment(refine_steps=30, storage="png", key=str(keyed["key"]))
    deployment = load_deployment(ModelSource(str(keyed["ckpt"])), torch.device("cpu"), enrolment)
    distorter = deployment.distorter
    assert deployment.threshold == pytest.approx(float(torch.load(keyed["ckpt"], weights_only=False)
                                                       ["state_dict"]["operating_threshold"]))  # fmt: skip
    torch.manual_seed(0)
    with torch.no_grad():
        emb = distorter.embedding(x)
        stored = distorter.embedding(distorter(x, target=emb))
    match = distorter.matched
    own = pair_scores(match(stored), match(distorter.probe(emb)))
    other_key = match(distorter.transform(emb, fixed_key("another site")))
    replay = pair_scores(match(stored), match(distorter.probe(stored)))
    assert (own > pair_scores(match(stored), other_key)).all()
    assert (own > replay).all()


def test_a_wrong_key_fails_with_both_fingerprints(keyed) -> None:
    wrong = generate_key()
    right = load_key(keyed["key"])
    with pytest.raises(KeyMismatchError, match=right.fingerprint):
        wrong.check(right.fingerprint, "this carrier")


def test_privacy_runs_every_keyed_attack(keyed, tiny, tmp_path) -> None:
    import json

    main(["privacy", "--model.ckpt", str(keyed["ckpt"]), "--enrolment.key", str(keyed["key"]),
          "--data", str(tiny["out"] / "data"), "--cache", str(tiny["out"] / "cache"), "--attack.steps", "2",
          "--attack.batch_size", "4", "--attack.depth", "2", "--attack.width", "4", "--faces.images", "4",
          "--faces.cnn_images", "1", "--tokens", "true",
          "--out", str(tmp_path), "--wandb", "false"])  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    for section, keys in {
        "keyed_deployment": ("threshold", "deploy_eer", "carrier_vs_carrier_false_accept"),
        "keyed_impostors": ("original_false_accept", "carrier_vs_carrier_false_accept",
                            "carrier_vs_carrier_false_accept_at_carrier_threshold"),
        "keyed_replay": ("accepted",),
        "keyed_linkage": ("direct/d_sys_floor", "direct/d_sys", "covariance_alignment/eer", "ica/d_sys",
                          "trained_linker/eer"),
        "keyed_insider": ("eer_1", "eer_10"),
        "keyed_inversion_without_key": ("accepted_other_image_without_key", "accepted_other_image_with_key",
                                        "accepted_other_image_token_without_key"),
        "keyed_revocation": ("old_carrier_accepted_genuine",),
        # the same store with each person's token, each secret stolen in turn, and linkage in both modes
        "keyed_token_deployment": ("deploy_eer", "true_accept", "false_accept_victims_token", "false_accept_own_token"),
        "keyed_token_replay": ("accepted_victims_token", "accepted_guessed_token"),
        "keyed_token_insider": ("eer_1", "eer_10"),
        "keyed_token_linkage": tuple(f"{mode}_{photo}/{attacker}/{number}" for mode in ("token", "system_key")
                                     for photo in ("same_photo", "other_photo")
                                     for attacker in ("direct", "covariance_alignment", "ica", "trained_linker",
                                                      "norm", "distance_profile")
                                     for number in ("d_sys", "d_sys_floor", "eer")),
        "keyed_token_revocation": ("old_carrier_accepted_genuine", "old_carrier_accepted_same_image"),
    }.items():  # fmt: skip
        assert all(0 <= report[section][k] <= 1 for k in keys), section
    assert report["keyed_keys"]["fingerprint"] == load_key(keyed["key"]).fingerprint
    assert report["keyed_keys"]["renewed_fingerprint"] != report["keyed_keys"]["fingerprint"]
    secret = load_key(keyed["key"])._secret.hex()
    assert all(secret not in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_evaluate_scores_a_keyed_deployment(keyed, tiny, tmp_path) -> None:
    import json

    main(["evaluate", "--model.ckpt", str(keyed["ckpt"]), "--enrolment.key", str(keyed["key"]),
          "--data", str(tiny["root"]), "--cache", str(tiny["out"] / "cache"), "--out", str(tmp_path),
          "--wandb", "false", "--image_metrics", "false", "--faces.names", "[]",
          "--enrolment.storage", "png"])  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["key_fingerprint"] == load_key(keyed["key"]).fingerprint
    assert report["orig"]["view2"]["accuracy_mean"] >= 0.9
    assert 0 <= report["deploy"]["view2"]["eer"] <= 1


def test_distort_records_the_key_fingerprint(keyed, photos, tmp_path) -> None:
    import json

    main(["distort", "--model.ckpt", str(keyed["ckpt"]), "--enrolment.key", str(keyed["key"]),
          "--input", str(photos[0].parent), "--out", str(tmp_path), "--workers", "1"])  # fmt: skip
    summary = json.loads((tmp_path / "embeddings.json").read_text())
    assert summary["key_fingerprint"] == load_key(keyed["key"]).fingerprint and summary["distorted"] >= 1
