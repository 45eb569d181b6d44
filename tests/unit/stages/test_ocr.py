"""Tesseract and RapidOCR on rendered 720p slides (through JPEG, as keyframes are stored): word accuracy against the
known text, the confidence, meaningless-text and repeat filters, and what a bullet reveal leaves."""

import io
import re
from contextlib import ExitStack

import pytest
from PIL import Image

from lectern.pipeline import artifact_key
from lectern.stages.ocr import run as ocr
from lectern.store import Keys
from lectern_dev.synthetic import Scene, bullet_reveal, render
from tests.unit.stages.conftest import record

SLIDES = [
    Scene("Photosynthesis", ("Plants turn light into chemical energy", "It happens in the chloroplast")),
    Scene("Light Reactions", ("Water is split and oxygen is released", "Energy is stored in ATP")),
    *bullet_reveal("Calvin Cycle", ["Carbon dioxide is fixed", "Sugar is built from it", "ATP pays for it"]),
    Scene("", ()),  # a blank frame: nothing meaningful to read
]


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.fixture
def keyframed(store):
    keys = []
    for n, scene in enumerate(SLIDES):
        buffer = io.BytesIO()
        Image.fromarray(render(scene)).save(buffer, format="JPEG", quality=90)
        keys.append(store.put_bytes(Keys.keyframe("slides", n * 10.0, n * 10.0 + 10, 1), buffer.getvalue()))
    clips = {"clips": [{"keyframes": [{"key": key, "time": n * 10.0}]} for n, key in enumerate(keys)]}
    store.put_json(artifact_key("keyframes", "clips", "slides"), clips)
    return record("slides", artifacts={"keyframes": {"clips": artifact_key("keyframes", "clips", "slides")}}), keys


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
def test_word_accuracy_and_filters(keyframed, store, settings, engine):
    import dataclasses

    video, keys = keyframed
    result = ocr.run(video, store, dataclasses.replace(settings, ocr_engine=engine))
    document = store.get_json(result.artifacts["ocr"])
    raw = [document["details"][k]["raw"] for k in keys]
    # Word accuracy of the raw reading over every slide with text (bullet glyphs excluded by the confidence filter).
    expected = [w for scene in SLIDES for w in words(scene.title + " " + " ".join(scene.lines))]
    read = [w for text in raw for w in words(text)]
    correct = sum(min(read.count(w), expected.count(w)) for w in set(expected))
    assert correct / len(expected) >= 0.95 and len(read) <= len(expected) * 1.05, (read, expected)
    texts = [document["texts"][k] for k in keys]
    assert texts[0].startswith("Photosynthesis") and "chloroplast" in texts[0]
    # The bullet reveal: the second and third builds add only their new line.
    assert words(texts[3]) == words("Sugar is built from it") and words(texts[4]) == words("ATP pays for it")
    assert texts[5] == "" and document["details"][keys[5]]["dropped"].startswith("too short")
    assert result.metrics["dropped"] == 1 and result.metrics["with_text"] == 5


def test_a_repeated_reading_is_dropped(store, settings):
    assert ocr.similarity("Calvin Cycle\nCarbon dioxide is fixed", "Calvin  cycle carbon dioxide is fixed") == 1.0
    assert ocr.meaningless("-- | ~ == a1", 2).startswith("mostly symbols")
    assert ocr.meaningless("e e", 8) == "too short (2 letters or digits)"
    assert ocr.meaningless("Energy is stored in ATP", 8) is None
    assert ocr.novel_lines("Title\nold line\nnew line", "title\nold line") == "new line"


def test_vlm_engine_code_path(keyframed, store, settings, tiny_models):
    """The VLM backend through transformers' real generate (a tiny random encoder-decoder: it reads nothing
    useful, so its answers meet the same filters and are recorded)."""
    import dataclasses

    video, keys = keyframed
    vlm = dataclasses.replace(settings, ocr_engine="vlm", ocr_vlm_model=tiny_models["ocr_vlm"], llm_batch_size=4)
    result = ocr.run(video, store, vlm)
    document = store.get_json(result.artifacts["ocr"])
    assert document["engine"] == "vlm" and document["model"] == tiny_models["ocr_vlm"]
    assert set(document["texts"]) == set(keys) and result.metrics["keyframes"] == len(keys)
    assert all(isinstance(d["raw"], str) and d["confidence"] is None for d in document["details"].values())


def test_images_are_read_as_grey_copies_a_run_at_a_time(keyframed, store, monkeypatch, tmp_path):
    """Tesseract reads the keyframes' luma (PGM copies at full size) in runs of IMAGES_PER_RUN: each keyframe
    keeps its own text across the runs' boundaries, and the copies are gone afterwards."""
    _video, keys = keyframed
    with ExitStack() as stack:
        paths = [str(stack.enter_context(store.local_path(key))) for key in keys[:3]]
        copies = ocr.grey_copies(paths[:1], str(tmp_path))
        with Image.open(copies[0]) as grey, Image.open(paths[0]) as colour:
            assert grey.mode == "L" and grey.size == colour.size == (1280, 720)
        monkeypatch.setattr(ocr, "IMAGES_PER_RUN", 2)
        monkeypatch.setattr(ocr.tempfile, "tempdir", str(tmp_path / "runs"))
        (tmp_path / "runs").mkdir()
        texts = [text for text, _confidence in ocr.read_images(paths, "eng", 60.0)]
    assert [words(text)[:2] for text in texts] == [["photosynthesis", "plants"], ["light", "reactions"],
                                                   ["calvin", "cycle"]]
    assert not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
@pytest.mark.parametrize("damage", [lambda data: b"not an image", lambda data: data[:len(data) // 3]],
                         ids=["random bytes", "truncated"])
def test_an_unreadable_keyframe_fails_the_video_as_corrupt_media(keyframed, store, settings, damage, engine):
    """A keyframe the image decoder cannot read fails OCR permanently, saying which keyframe (the runner records
    the class and message in the video's state row)."""
    import dataclasses

    from lectern.errors import CorruptMedia, classify

    video, keys = keyframed
    with store.local_path(keys[2]) as path:
        data = path.read_bytes()
    store.put_bytes(keys[2], damage(data))
    with pytest.raises(CorruptMedia, match=r"keyframe .*\.jpg is not a readable image") as failure:
        ocr.run(video, store, dataclasses.replace(settings, ocr_engine=engine))
    assert classify(failure.value) == ("CorruptMedia", False)
