"""The caption stage on a generated two-shot video with the tiny models: clips cut at the scene change (no
transcript: a pairs video skips transcribe), frames captioned by the tiny ViT-GPT2, summarised by the scripted
LLM, scored by the tiny CLIP and a LAION-style aesthetic head, and filtered on those scores."""

import dataclasses
import subprocess

import numpy as np
import pytest

from lectern.pipeline import artifact_key
from lectern.stages.caption import run as caption
from lectern.stages.download import media
from lectern.stages.keyframes import run as keyframes
from lectern_dev.tiny_models import SCRIPTED_ANSWER  # what the scripted tiny LLM answers to every prompt
from tests.unit.stages.conftest import record


@pytest.fixture
def two_shots(tmp_path, store, settings):
    """A 6-second video, colour bars then a moving test pattern from 3 s, its clips cut at the change."""
    path = tmp_path / "shots.mp4"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", "smptebars=size=320x180:rate=25:duration=3",
                    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3", "-filter_complex",
                    "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(path)], check=True)
    store.put_file(artifact_key("download", "source", "shots"), path)
    store.put_json(artifact_key("download", "probe", "shots"), media.probe(path))
    video = record("shots", artifacts={"download": {"source": artifact_key("download", "source", "shots")}})
    cut = keyframes.run(video, store, settings)  # no transcript: cut at scene changes whatever the segmenter
    assert cut.status == "succeeded" and cut.metrics["clip_segmenter"] == "scene"
    video.artifacts["keyframes"] = cut.artifacts
    return video


def test_clips_are_captioned_summarised_and_scored(two_shots, store, settings):
    result = caption.run(two_shots, store, settings)
    assert result.status == "succeeded", result.reason
    assert result.artifacts["captions"] == artifact_key("caption", "captions", "shots")
    clips = store.get_json(result.artifacts["captions"])["clips"]
    assert [(c["start"], c["end"]) for c in clips] == [(0.0, 3.0), (3.0, 6.0)]
    for clip in clips:
        assert clip["frame_times"] == [clip["start"] + d for d in (0.375, 1.125, 1.875, 2.625)]  # 4 frames spread
        assert len(clip["frame_captions"]) == 4 and isinstance(clip["middle_frame_caption"], str)
        # the summariser's answer (cut at LECTERN_CAPTION_MAX_NEW_TOKENS) is the clip's caption
        assert len(clip["caption"]) > 20 and SCRIPTED_ANSWER.startswith(clip["caption"])
        assert -1.0 <= clip["clip_similarity"] <= 1.0 and clip["aesthetic"] is not None
        assert clip["kept"] and clip["filtered"] is None
    # the two shots look different to the score model
    assert clips[0]["clip_similarity"] != clips[1]["clip_similarity"]
    assert (result.metrics["clips"], result.metrics["clips_kept"], result.metrics["frames_captioned"]) == (2, 2, 10)


def test_without_a_summariser_the_middle_frame_caption_is_the_clip_caption(two_shots, store, settings):
    result = caption.run(two_shots, store, dataclasses.replace(settings, caption_summary_model=None))
    clips = store.get_json(result.artifacts["captions"])["clips"]
    assert all(c["caption"] == c["middle_frame_caption"] for c in clips)


def test_score_filters_drop_clips_with_why_and_reject_a_video_with_none_left(two_shots, store, settings):
    scored = store.get_json(caption.run(two_shots, store, settings).artifacts["captions"])["clips"]
    low, high = sorted(c["clip_similarity"] for c in scored)
    between = (low + high) / 2
    result = caption.run(two_shots, store, dataclasses.replace(settings, caption_min_similarity=between))
    clips = store.get_json(result.artifacts["captions"])["clips"]
    assert result.status == "succeeded" and result.metrics["clips_kept"] == 1
    dropped = next(c for c in clips if not c["kept"])
    assert dropped["clip_similarity"] == low and dropped["filtered"] == f"clip similarity {low:.3f} < {between:g}"
    top = max(c["aesthetic"] for c in scored)
    rejected = caption.run(two_shots, store, dataclasses.replace(settings, caption_min_aesthetic=top + 1))
    assert rejected.status == "rejected" and rejected.reason.startswith("no clip passed the caption filters: aesthetic")
    assert store.exists(artifact_key("caption", "captions", "shots"))  # what was filtered, and why, stays readable


def test_the_aesthetic_head_applies_its_linear_layers_in_order(tmp_path, tiny_models):
    from safetensors.numpy import load_file

    head = caption.aesthetic_head(tiny_models["aesthetic_head"])
    state = load_file(tiny_models["aesthetic_head"])
    x = np.random.default_rng(1).normal(size=(3, 16)).astype(np.float32)
    expected = (x @ state["layers.0.weight"].T + state["layers.0.bias"]) @ state["layers.2.weight"].T \
        + state["layers.2.bias"]
    assert np.allclose(head(x), expected[:, 0], atol=1e-5)
