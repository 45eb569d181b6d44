"""SSIM keyframes against the demo corpus' known slide changes, and clip segmentation."""


import pytest

from lectern.pipeline import artifact_key
from lectern.stages.keyframes import decoding, selection
from lectern.stages.keyframes import run as keyframes
from lectern.stages.keyframes.run import segment_clips
from lectern.store import Keys
from tests.unit.stages.conftest import record


def seg(start, end, text):
    return {"start": start, "end": end, "text": text}


def test_clips_close_at_sentence_ends_within_bounds():
    segments = [seg(0.5, 4, "First part"), seg(5, 11, "ends here."), seg(12, 16, "Next"), seg(17, 24, "more"),
                seg(25, 29, "and more"), seg(30, 34, "done.")]
    clips = segment_clips(segments, 40.0, 10, 20)
    # the second clip is 13 s at "more" but the next segment fits within 20 s: it closes at 29
    assert [(c.start, c.end) for c in clips] == [(0.0, 11), (11, 29), (29, 40.0)]
    assert clips[0].text == "First part ends here."
    # contiguous and covering the video
    assert all(a.end == b.start for a, b in zip(clips, clips[1:]))


def test_clip_never_exceeds_max_unless_one_segment_does():
    segments = [seg(i * 3, i * 3 + 2.5, "no punctuation") for i in range(20)]
    clips = segment_clips(segments, 60.0, 10, 20)
    assert all(c.end - c.start <= 20 for c in clips[:-1])
    assert clips[-1].end == 60.0


def test_no_segments_gives_one_clip():
    assert [(c.start, c.end) for c in segment_clips([], 30.0, 10, 20)] == [(0.0, 30.0)]


@pytest.mark.parametrize("mode,lag", [("iframes", 4.1), ("interval", 1.1)])  # the demo videos' GOP is 4 s
def test_keyframes_match_slide_changes(demo_corpus, mode, lag):
    directory, truth = demo_corpus
    for video_id, info in truth["videos"].items():
        slides = info["slides"]
        samples = decoding.sample_frames(str(directory / f"{video_id}.mp4"), mode, 1.0, 320)
        found = list(selection.select_keyframes(samples, 0.95, (8, 12)))
        assert len(found) == len(slides), video_id
        for keyframe, slide in zip(found, slides):
            assert slide["start"] <= keyframe.time < slide["start"] + lag  # found within one sampling step


def test_stage_writes_named_jpegs_and_clips(downloaded, store, settings, demo_corpus):
    video = downloaded("cell_division")
    slides = demo_corpus[1]["videos"]["cell_division"]["slides"]
    asr = {"segments": [seg(s["start"] + 0.5, s["start"] + 5, s["narration"]) for s in slides]}
    store.put_json(artifact_key("transcribe", "asr", "cell_division"), asr)
    video.artifacts["transcribe"] = {"asr": artifact_key("transcribe", "asr", "cell_division")}
    result = keyframes.run(video, store, settings)
    assert result.status == "succeeded"
    document = store.get_json(result.artifacts["clips"])
    frames = [f for clip in document["clips"] for f in clip["keyframes"]]
    assert len(frames) == len(slides) == result.metrics["keyframes"]
    for clip in document["clips"]:
        for n, frame in enumerate(clip["keyframes"], start=1):
            assert frame["key"].endswith(f"cell_division@{clip['start']:.1f}_{clip['end']:.1f}#{n}.jpg")
            assert store.get_bytes(frame["key"])[:2] == b"\xff\xd8"  # JPEG
    # a rerun overwrites: same keys, no duplicates
    again = keyframes.run(video, store, settings)
    assert again.metrics["keyframes"] == len(slides)
    assert len(store.list(Keys.video("cell_division", "keyframes/"))) == len(slides)


def test_visual_text_filter_keeps_text_and_drops_images(downloaded, store, settings, demo_corpus, tiny_models):
    """The clip filter through the real transformers dual-encoder path (a tiny random CLIP): its similarities
    are meaningless but real, so the thresholds below bracket them."""
    import dataclasses

    video = downloaded("cell_division")
    slides = demo_corpus[1]["videos"]["cell_division"]["slides"]
    store.put_json(artifact_key("transcribe", "asr", "cell_division"),
                   {"segments": [seg(s["start"] + 0.5, s["start"] + 5, s["narration"]) for s in slides]})
    video.artifacts["transcribe"] = {"asr": artifact_key("transcribe", "asr", "cell_division")}
    keep = dataclasses.replace(settings, clip_filter_model=tiny_models["clip"], clip_filter_min_similarity=-1.0)
    result = keyframes.run(video, store, keep)
    clips = store.get_json(result.artifacts["clips"])["clips"]
    similarities = [c["visual_text_similarity"] for c in clips if c["keyframes"]]
    assert len(similarities) == len(clips) and all(-1.0 <= s <= 1.0 for s in similarities)
    assert result.metrics["keyframes"] == len(slides) and result.metrics["clip_filter_dropped_keyframes"] == 0

    cut = sorted(similarities)[1]  # strictly above the lowest: that clip's images go, its words stay
    strict = dataclasses.replace(keep, clip_filter_min_similarity=cut)
    result = keyframes.run(video, store, strict)
    clips = store.get_json(result.artifacts["clips"])["clips"]
    text_only = [c for c in clips if c.get("dropped_keyframes")]
    assert len(text_only) == 1 and text_only[0]["keyframes"] == [] and text_only[0]["asr"]
    assert result.metrics["clip_filter_dropped_keyframes"] == len(text_only[0]["dropped_keyframes"])
    assert result.metrics["keyframes"] == len(slides) - result.metrics["clip_filter_dropped_keyframes"]
    stored = set(store.list(Keys.video("cell_division", "keyframes/")))
    assert stored == {f["key"] for c in clips for f in c["keyframes"]}  # dropped images are not in the store

    none = dataclasses.replace(keep, clip_filter_min_similarity=1.01)
    result = keyframes.run(video, store, none)
    assert result.status == "rejected" and result.reason.startswith("no keyframes left: the visual-text filter")


def test_face_filter_marks_a_talking_head(tmp_path, store, settings):
    """The published corpus keeps face keyframes in its full file and leaves them out of the face-filtered one:
    the filter marks them (the export writes the variant, tests/unit/test_export.py)."""
    import dataclasses

    from lectern.stages.download import media
    from lectern.stages.keyframes import faces
    from lectern_dev.synthetic import Scene, write_video

    scenes = [Scene("Enzymes", ("Proteins that speed up reactions",)), Scene("", picture=True),
              Scene("Active Site", ("The substrate binds here",))]
    path = tmp_path / "talk.mp4"
    write_video(path, scenes, fps=10, gop_s=1.0)
    grays = {s.time: s.gray for s in decoding.sample_frames(str(path), "iframes", 1.0, 320)}
    assert faces.face_area_ratio(grays[10.0]) > 0.015 and faces.face_area_ratio(grays[2.0]) == 0.0
    store.put_file(artifact_key("download", "source", "talk"), path)
    store.put_json(artifact_key("download", "probe", "talk"), media.probe(path))
    store.put_json(artifact_key("transcribe", "asr", "talk"), {"segments": []})
    video = record("talk", artifacts={"download": {"source": artifact_key("download", "source", "talk")},
                                      "transcribe": {"asr": artifact_key("transcribe", "asr", "talk")}})
    assert keyframes.run(video, store, settings).metrics["keyframes"] == 3
    result = keyframes.run(video, store, dataclasses.replace(settings, face_max_area=0.015))
    assert result.metrics["keyframes"] == 3 and result.metrics["face_keyframes"] == 1
    assert len(store.list(Keys.video("talk", "keyframes/"))) == 3
    clips = store.get_json(artifact_key("keyframes", "clips", "talk"))["clips"]
    marked = [(f["time"], f.get("face", False)) for c in clips for f in c["keyframes"]]
    assert [face for _, face in marked] == [False, True, False] and 8.0 <= marked[1][0] < 16.0
