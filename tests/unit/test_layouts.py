"""Keyframes on recorded-lecture layouts (lectern_dev.layouts): a speaker's webcam in a corner that toggles off
and on, or in a side strip; a pointer; handwriting; a video playing in a slide; the speaker full screen; wipe,
push and zoom transitions; scrolling. Every state must be kept (recall >= 0.98) and none twice (precision >= 0.95),
through the fast path (I-frames every second) and through scan (x264's default 10-s GOP)."""

import json

import pytest

from lectern.stages.keyframes import decoding, faces, selection, ssim
from lectern_dev.layouts import LAYOUTS, score_states, write_layout
from tests.conftest import CACHE

THRESHOLD, WIDTH, GRID = 0.95, 320, (8, 12)  # the defaults
FACE_MAX_AREA = 0.04  # the published face filter's


def layout_video(name: str, gop_s: float | None) -> tuple[str, dict]:
    directory = CACHE / "layouts-v1"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-gop{gop_s or 'default'}.mp4"
    truth_file = path.with_suffix(".json")
    if not truth_file.is_file():
        truth_file.write_text(json.dumps(write_layout(path, name, fps=10, gop_s=gop_s)))
    return str(path), json.loads(truth_file.read_text())


def keyframes(path: str, mode: str) -> list[tuple[float, bool]]:
    found = selection.select_keyframes(decoding.sample_frames(path, mode, 1.0, WIDTH, THRESHOLD, GRID), THRESHOLD, GRID)
    return [(k.time, faces.face_area_ratio(k.gray) > FACE_MAX_AREA) for k in found]


@pytest.mark.parametrize("mode,gop_s", [("iframes", 1.0), ("scan", 25.0)])  # 25 s: 250 frames at 10 fps
@pytest.mark.parametrize("name", LAYOUTS)
def test_every_state_once(name, mode, gop_s):
    path, truth = layout_video(name, gop_s)
    assert decoding.choose_sampling(path, max_gop_s=2.0) == mode
    score = score_states(keyframes(path, mode), truth)
    assert score["recall"] >= 0.98 and score["precision"] >= 0.95, score


def test_the_paper_s_global_ssim_and_the_old_rule_miss_slides_under_a_webcam():
    """What the motion mask is for: the plain grid rule (every cell decides, candidates must settle everywhere)
    finds few slide changes under a moving inset."""
    path, truth = layout_video("speaker_inset", 1.0)
    samples = list(decoding.sample_frames(path, "iframes", 1.0, WIDTH))
    changed = 0
    for before, after in zip(samples, samples[1:]):
        cells = ssim.cell_similarity(before.gray, after.gray, GRID)
        changed += bool((cells < THRESHOLD).any())
    slides = sum(1 for s in truth["states"] if s["kind"] == "slide")
    assert changed > 3 * slides  # the inset changes cells between nearly every pair of samples...
    score = score_states(keyframes(path, "iframes"), truth)
    assert score["recall"] == 1.0 and score["keyframes"] == slides  # ...and still only the slides are kept


def test_a_board_is_kept_when_finished():
    """Handwriting: each board's final state is a keyframe (Algorithm 1 keeps a frame once enough is added)."""
    path, truth = layout_video("handwriting", 1.0)
    found = keyframes(path, "iframes")
    finished = [s for s in truth["states"] if s["kind"] == "slide"]
    for board in finished:
        assert any(board["start"] <= moment < board["end"] for moment, _ in found), board


def test_the_speaker_full_screen_gives_no_unmarked_keyframe():
    path, truth = layout_video("talking_head", 1.0)
    heads = [s for s in truth["states"] if s["kind"] == "face"]
    for moment, face in keyframes(path, "iframes"):
        if any(h["start"] <= moment < h["end"] for h in heads):
            assert face, moment  # the face filter marks it: the face-filtered samples leave it out
