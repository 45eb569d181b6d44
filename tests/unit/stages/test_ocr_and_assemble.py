"""Real tesseract OCR of real keyframes, then the published sample format."""

import re

from lectern.stages import assemble, keyframes, ocr
from lectern.store import Keys
from tests.conftest import assert_published_sample


def words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_ocr_finds_slide_text_and_assemble_interleaves(downloaded, store, settings, demo_corpus):
    video = downloaded("photosynthesis")
    slides = demo_corpus[1]["videos"]["photosynthesis"]["slides"]
    segments = [{"start": s["start"] + 0.5, "end": s["start"] + 5, "text": s["narration"]} for s in slides]
    store.put_json(Keys.asr(video.id), {"segments": segments})
    video.artifacts["transcribe"] = {"asr": Keys.asr(video.id)}
    video.artifacts["keyframes"] = keyframes.run(video, store, settings).artifacts

    result = ocr.run(video, store, settings)
    texts = list(store.get_json(result.artifacts["ocr"])["texts"].values())
    assert len(texts) == len(slides)
    for slide, text in zip(slides, texts):
        assert words(slide["title"] + " " + slide["body"]) <= words(text), (slide, text)

    video.artifacts["ocr"] = result.artifacts
    assembled = assemble.run(video, store, settings)
    assert assembled.status == "succeeded"
    samples = [__import__("json").loads(line) for line in store.get_bytes(Keys.samples(video.id)).decode().splitlines()]
    assert len(samples) == 1
    sample = samples[0]
    assert_published_sample(sample)
    assert sample["image_num"] == len(slides)
    assert sample["text_num"] >= 2  # clips follow the narration: several image/text runs
    assert sample["token_num"] == sum(
        e["asr_token_num"] for e in store.get_json(Keys.clip_level(video.id))["conversations"][:-1]
    ) + 576 * len(slides)
    clip_level = store.get_json(Keys.clip_level(video.id))
    assert clip_level["conversations"][-1]["vid"] == "End of a Video"
    meta = store.get_json(assembled.artifacts["video_meta"])
    assert (meta["video_id"], meta["title"], meta["knowledge_points"]) == (video.id, "photosynthesis", ["Photosynthesis"])
    assert {"desc", "duration", "language", "search_keyword", "if_repetition", "label", "cover_url"} <= set(meta)
    assert meta["label"] is None  # found by a search, not listed in a manifest


def test_samples_respect_the_token_budget():
    entries = [{"vid": "v", "clip_path": f"v@{i}", "start": i, "end": i + 1, "asr": "text", "text": "text", "ocr_joined": "",
                "extracted_frames": ["k"], "frame_times": [i], "keyframe_ssim": [None], "token_num": 600}
               for i in range(5)]
    samples = assemble.build_samples(entries, 1300)
    assert [s["image_num"] for s in samples] == [2, 2, 1]
    assert all(s["token_num"] <= 1300 for s in samples)
    assert [s["image_num"] for s in assemble.build_samples(entries, 10_000, max_images=3)] == [3, 2]
    assert [s["image_num"] for s in assemble.build_samples(entries, 10_000)] == [5]
    big = [{**entries[0], "token_num": 5000, "extracted_frames": ["k"] * 4, "frame_times": [0] * 4,
            "keyframe_ssim": [None] * 4}] + entries[1:2]
    assert [s["image_num"] for s in assemble.build_samples(big, 1300, max_images=3)] == [4, 1]  # stands alone
