"""The baseline classifier on a generated pairs release whose categories can be learnt only from the pictures
(every description is the same sentence): each category a colour, its covers and keyframes that colour with noise.
It must do well above chance on held-out videos, and the saved model must give the same answers again."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from lectern.baseline import examples, split, train
from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.store import Keys, LocalStore
from tests.conftest import model_environment

COLOURS = {"Beach": (230, 200, 120), "Sea": (20, 60, 200), "Nature": (40, 160, 50)}


def picture(colour, seed: int, size=(64, 48), kind="JPEG") -> bytes:
    noise = np.random.default_rng(seed).integers(-40, 40, (size[1], size[0], 3))
    pixels = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, kind)
    return buffer.getvalue()


@pytest.fixture
def colour_release(tmp_path, tiny_models):
    settings = Settings.from_env({**model_environment(tiny_models), "LECTERN_HOME": str(tmp_path)})
    store = LocalStore(settings.home / "store")
    rows = []
    for label, colour in COLOURS.items():
        for n in range(10):
            video_id = f"{label.lower()}{n:02d}"
            cover = store.put_bytes(artifact_key("download", "cover", video_id, extension="png"),
                                    picture(colour, 1000 + len(rows), kind="PNG"))
            for clip in range(2):
                frame = store.put_bytes(Keys.keyframe(video_id, clip * 5.0, clip * 5.0 + 5, 1),
                                        picture(colour, n * 10 + clip))
                rows.append({"video_id": video_id, "clip_start": clip * 5.0, "clip_end": clip * 5.0 + 5,
                             "caption": "a clip", "label": label, "description": "A short stock video clip.",
                             "cover": cover, "keyframes": [frame], "clip_similarity": None, "aesthetic": None})
    shard = store.put_bytes(Keys.release("colours", "pairs-00000.jsonl"),
                            "".join(json.dumps(r) + "\n" for r in rows).encode())
    store.put_json(Keys.release("colours", "manifest.json"), {"release": "colours", "kind": "pairs",
                                                               "shards": [shard]})
    return settings, store


def test_the_split_is_by_video_per_category_and_the_same_every_time(colour_release):
    _, store = colour_release
    videos = examples(store, "colours")
    assert len(videos) == 30 and all(len(v.keyframes) == 2 for v in videos)
    train_videos, test_videos = split(videos, 0.2)
    assert sorted(v.label for v in test_videos) == ["Beach"] * 2 + ["Nature"] * 2 + ["Sea"] * 2
    assert not {v.video_id for v in train_videos} & {v.video_id for v in test_videos}
    assert [v.video_id for v in split(videos, 0.2)[1]] == [v.video_id for v in test_videos]


def test_the_baseline_learns_categories_from_covers_and_keyframes(colour_release):
    from lectern.baseline import evaluate

    settings, store = colour_release
    result = train(settings, "colours", epochs=200, test_fraction=0.3)
    assert result["features"] == {"text": settings.embedding_model, "cover": settings.caption_score_model,
                                  "keyframes": settings.caption_score_model}
    assert result["chance"] == pytest.approx(1 / 3, abs=1e-3)
    assert result["overall"]["test"] == 9 and result["overall"]["accuracy"] >= 0.8  # chance: 0.33
    assert set(result["categories"]) == set(COLOURS)
    assert store.exists(Keys.baseline("colours", "model.pt"))
    assert evaluate(settings, "colours")["overall"] == result["overall"]  # the saved model, reloaded


def test_text_alone_cannot_tell_the_categories_apart(colour_release):
    from dataclasses import replace

    settings, _ = colour_release
    result = train(replace(settings, caption_score_model=None), "colours", epochs=100, test_fraction=0.3)
    assert result["features"] == {"text": settings.embedding_model}
    assert result["overall"]["accuracy"] <= 0.5  # one sentence for every video: no better than a guess


def test_a_textbook_release_is_refused(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json(Keys.release("book", "manifest.json"), {"kind": "textbook", "shards": []})
    with pytest.raises(ValueError, match="trains on a pairs release"):
        examples(store, "book")
