"""Real tesseract OCR of real keyframes, then the published sample format."""

import json
import re

from lectern import packing
from lectern.pipeline import artifact_key
from lectern.stages.assemble import run as assemble
from lectern.stages.keyframes import run as keyframes
from lectern.stages.ocr import run as ocr
from tests.conftest import assert_published_sample
from tests.obelics_loader import parse_sample
from tests.published import VIDEO_META_KEYS, assert_published_clip


def words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_ocr_finds_slide_text_and_assemble_interleaves(downloaded, store, settings, demo_corpus):
    video = downloaded("photosynthesis")
    slides = demo_corpus[1]["videos"]["photosynthesis"]["slides"]
    segments = [{"start": s["start"] + 0.5, "end": s["start"] + 5, "text": s["narration"]} for s in slides]
    store.put_json(artifact_key("transcribe", "asr", video.id), {"segments": segments})
    video.artifacts["transcribe"] = {"asr": artifact_key("transcribe", "asr", video.id)}
    video.artifacts["keyframes"] = keyframes.run(video, store, settings).artifacts

    result = ocr.run(video, store, settings)
    texts = list(store.get_json(result.artifacts["ocr"])["texts"].values())
    assert len(texts) == len(slides)
    for slide, text in zip(slides, texts):
        assert words(slide["title"] + " " + slide["body"]) <= words(text), (slide, text)

    video.artifacts["ocr"] = result.artifacts
    assembled = assemble.run(video, store, settings)
    assert assembled.status == "succeeded"
    samples = [json.loads(line)
               for line in store.get_bytes(artifact_key("assemble", "samples", video.id)).decode().splitlines()]
    assert len(samples) == 1
    sample = samples[0]
    tokenizer = packing.tokenizer_name(settings)
    assert_published_sample(sample, tokenizer)  # text_num recomputed from the texts with the named tokenizer
    assert sample["image_num"] == len(slides)
    assert sample["text_num"] == packing.count_tokens(" ".join(s["narration"] for s in slides), tokenizer) > 20
    assert sample["metadata"][-1]["end_of_video"] is True
    clip_level = store.get_json(artifact_key("assemble", "clip_level", video.id))
    assert clip_level["conversations"][-1] == {"vid": "End of a Video", "clip_path": video.id, "image_tokens": 0,
                                               "token_num": 0}
    for clip in clip_level["conversations"][:-1]:
        assert_published_clip(clip)
        assert all(store.exists(key) for key in clip["keyframe_ssim"])  # the SSIM keyframes' images
        assert len(clip["extracted_frames"]) >= len(clip["keyframe_ssim"])  # frames compared >= frames kept
    assert [k for c in clip_level["conversations"][:-1] for k in c["keyframe_ssim"]] == [
        i for i in sample["images"] if i]
    meta = store.get_json(assembled.artifacts["video_meta"])
    assert VIDEO_META_KEYS <= set(meta)
    assert (meta["video_id"], meta["title"], meta["knowledge_points"]) == (
        video.id, "photosynthesis", ["Photosynthesis"])
    assert meta["file_name"] == "photosynthesis.mp4" and meta["file_size (MB)"] > 0 and meta["video_duration"] > 10
    assert meta["label"] is None  # found by a search, not listed in a manifest


def entry(vid, i, tokens=600, images=1, text="text"):
    return {"vid": vid, "clip_path": f"{vid}@{i}", "start": i, "end": i + 1, "asr": text, "text": text, "ocr": "",
            "keyframe_ssim": [f"{vid}/k{i}-{n}.jpg" for n in range(images)], "frame_times": [i] * images,
            "keyframe_ssim_scores": [None] * images, "token_num": tokens, "asr_token_num": tokens - 576 * images}


def test_samples_respect_the_token_budget():
    entries = [entry("v", i) for i in range(5)]

    def images(groups):
        return [packing.sample(g)["image_num"] for g in groups]

    samples = [packing.sample(g) for g in packing.pack([entries], 1300)]
    assert [s["image_num"] for s in samples] == [2, 2, 1]
    assert all(s["token_num"] <= 1300 for s in samples)
    assert images(packing.pack([entries], 10_000, max_images=3)) == [3, 2]
    assert images(packing.pack([entries], 10_000)) == [5]
    big = [entry("v", 0, tokens=5000, images=4), entries[1]]
    assert images(packing.pack([big], 1300, max_images=3)) == [4, 1]  # stands alone


def test_packing_continues_into_the_next_video_and_records_the_boundary():
    """Two short videos that fit one budget: one sample, the first video's End-of-a-Video record between them."""
    first, second = [entry("a", 0), entry("a", 1)], [entry("b", 0)]
    [group] = packing.pack([first, second], 8192)
    assert [c["vid"] for c in group] == ["a", "a", "End of a Video", "b", "End of a Video"]
    sample = packing.sample(group)
    assert sample["image_num"] == 3 and sample["token_num"] == 1800 and sample["text_num"] == 1800 - 3 * 576
    assert [m.get("end_of_video", False) for m in sample["metadata"]] == [False, False, False, True, False, True]
    # per-video packing: none spans two videos
    assert [[c["vid"] for c in g] for g in (g for v in (first, second) for g in packing.pack([v], 8192))] == [
        ["a", "a", "End of a Video"], ["b", "End of a Video"]]
    # a budget that the first video fills: the second starts a sample of its own, the boundary stays recorded
    groups = list(packing.pack([first, second], 1300))
    assert [[c["vid"] for c in g] for g in groups] == [["a", "a", "End of a Video"], ["b", "End of a Video"]]


def test_a_run_of_clips_without_keyframes_is_not_a_sample():
    left_out = {}
    talk = [entry("v", i, tokens=900, images=0) for i in range(2)]
    groups = list(packing.pack([talk + [entry("v", 2)]], 1000, left_out=left_out))
    assert [[c["clip_path"] for c in g if c["vid"] == "v"] for g in groups] == [["v@2"]]
    assert left_out == {"text_only_groups": 2, "text_only_tokens": 1800}


def test_a_clip_with_ocr_but_no_speech_keeps_its_text_position_without_none(settings):
    clips = [{"start": 0.0, "end": 5.0, "asr": "", "sampled_times": [0.0, 2.0],
              "keyframes": [{"key": "videos/v/keyframes/v@0.0_5.0#1.jpg", "time": 0.0, "ssim": None}]},
             {"start": 5.0, "end": 9.0, "asr": "Cells divide.", "sampled_times": [6.0],
              "keyframes": [{"key": "videos/v/keyframes/v@5.0_9.0#1.jpg", "time": 6.0, "ssim": 0.4}]}]
    ocr = {"engine": "tesseract", "texts": {"videos/v/keyframes/v@0.0_5.0#1.jpg": "Mitosis",
                                            "videos/v/keyframes/v@5.0_9.0#1.jpg": ""},
           "details": {"videos/v/keyframes/v@0.0_5.0#1.jpg": {"raw": "Mitosis"},
                       "videos/v/keyframes/v@5.0_9.0#1.jpg": {"raw": "Mitosis", "dropped": "repeats"}}}
    entries = assemble.clip_entries("v", clips, ocr, settings)
    assert [e["ocr_tesseract"] for e in entries] == ["Mitosis", "Mitosis"]  # what OCR read...
    assert [e["ocr_tesseract_deduplicates"] for e in entries] == ["Mitosis", ""]  # ...and what it kept
    [group] = packing.pack([entries], 8192)
    sample = packing.sample(group)
    assert sample["texts"] == [None, "", None, "Cells divide."]
    assert sample["text_ocr_list"] == [None, "Mitosis", None, "Cells divide."]
    assert_published_sample(sample, packing.tokenizer_name(settings))
    parse_sample(sample)  # the paper's loader's assertions (images are opened in the export tests)
