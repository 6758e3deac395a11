"""Every registered part is reachable by its name: image distances from a config, keyed transforms by name (and
through a keyed model file), and every verb's flags and --help from the one mechanism (signatures and settings
groups)."""

from __future__ import annotations

import jsonargparse
import pytest
import torch

from distortion.cli import FUNCTION_COMMANDS, STORE_COMMANDS, main
from distortion.deployment.keyed_model import KeyedModel
from distortion.deployment.keyed_templates import TRANSFORMS, make_transform
from distortion.deployment.keys import generate_key
from distortion.modules import GeneratorModule
from distortion.objective.image_distances import IMAGE_DISTANCES, get_image_distance


@pytest.mark.parametrize("name", sorted(IMAGE_DISTANCES))
def test_every_image_distance_is_reachable_by_name_from_a_config(name: str) -> None:
    """A config naming the distance builds a GeneratorModule whose objective computes exactly that distance."""
    config = f"""
model:
  generator: {{class_path: distortion.models.UNet, init_args: {{in_channels: 1, depth: 2, width: 4}}}}
  embedding: {{class_path: distortion.models.MLPEmbedding, init_args: {{hidden: 16, dim: 4}}}}
  image: {{distance: {name}, alpha: 1.0}}
"""
    parser = jsonargparse.ArgumentParser()
    parser.add_class_arguments(GeneratorModule, "model")
    module = parser.instantiate_classes(parser.parse_string(config)).model
    x, y = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)).chunk(2)
    assert torch.equal(module.objective.distance(x, y), get_image_distance(name)(x, y))


def test_the_papers_combined_distances_weigh_into_one_sum_by_name() -> None:
    combined = get_image_distance({"sobel_l1": 1.0, "dssim_l1": 2.0})
    x, y = torch.rand(2, 2, 1, 16, 16, generator=torch.Generator().manual_seed(2)).unbind(0)
    expected = IMAGE_DISTANCES["sobel_l1"](x, y) + 2 * IMAGE_DISTANCES["dssim_l1"](x, y)
    assert torch.allclose(combined(x, y), expected)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_keyed_transform_is_built_by_name_and_survives_a_keyed_model_file(name: str, tmp_path) -> None:
    embeddings = torch.randn(256, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.arange(256) // 4
    transform = make_transform(name, 64, components=8).fit(embeddings, labels)
    assert isinstance(transform, TRANSFORMS[name]) and transform.label == name
    KeyedModel(transform, "test", 0.5).save(tmp_path / "model.pt")
    loaded = KeyedModel.load(tmp_path / "model.pt")
    assert type(loaded.transform) is type(transform) and loaded.transform.settings() == transform.settings()
    key = generate_key()
    assert torch.equal(loaded.transform(embeddings, key), transform(embeddings, key))


def test_a_setting_a_transform_does_not_have_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="compare is not a setting of 'rotation'"):
        make_transform("rotation", 8, components=4, compare="stored")
    with pytest.raises(ValueError, match="unknown transform 'spin'"):
        make_transform("spin", 8)
    assert make_transform("sign_projection", 8, components=4, bits=6, compare=None).bits == 6


@pytest.mark.parametrize("verb", [*sorted(FUNCTION_COMMANDS), *STORE_COMMANDS, "sweep"])
def test_every_verb_prints_help_built_from_its_signature(verb: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main([verb, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: distortion {verb}" in text or "usage:" in text
    takes_a_model = verb in ("evaluate", "privacy", "distort", "enrol", "verify", "identify", "serve")
    assert ("--model.ckpt" in text and "--model.keyed" in text) is takes_a_model, verb
