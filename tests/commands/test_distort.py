"""``distortion distort`` on a folder with broken files."""

from __future__ import annotations

import json
import shutil

from distortion.cli import main
from tests.lfw_fixtures import people_with_images


def test_distort_a_folder_with_a_corrupt_file_and_a_photo_without_a_face(tiny, tmp_path, capsys) -> None:
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    face = next(iter(people_with_images(1).values()))[0]
    shutil.copy(face, photos / "sub" / "face.jpg")
    (photos / "broken.jpg").write_bytes(face.read_bytes()[:500])
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 140, 200)).save(photos / "sky.png")
    main(
        [
            "distort",
            "--model.ckpt",
            str(tiny["ckpt"]),
            "--input",
            str(photos),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert "2 distorted (1 without a detected face" in printed and "skipped broken.jpg" in printed
    summary = json.loads((tmp_path / "out" / "embeddings.json").read_text())
    assert set(summary["images"]) == {"sub/face.jpg", "sky.png"} and "corrupt" in summary["skipped"]["broken.jpg"]
    assert summary["images"]["sky.png"]["face_found_by"] == "centre"
    assert len(summary["images"]["sub/face.jpg"]["embedding"]) == 128
    with Image.open(tmp_path / "out" / "distorted" / "sub" / "face.png") as image:
        assert image.size == (150, 150)
