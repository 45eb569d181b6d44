"""Scene-change segmentation on generated videos whose cuts are known: four shots with motion inside them (a
moving test pattern, a zooming fractal), a cut between two shots of the same colours, and the keyframes stage
cutting clips there."""

import dataclasses
import subprocess

import pytest

from lectern.pipeline import artifact_key
from lectern.stages.download import media
from lectern.stages.keyframes import run as keyframes
from lectern.stages.keyframes import scenes
from tests.unit.stages.conftest import record

SIZE = "size=320x180:rate=25"


def encode(path, inputs: list[str], graph: str) -> str:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *inputs, "-filter_complex", graph, "-map", "[v]",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "50", str(path)], check=True)
    return str(path)


@pytest.fixture(scope="module")
def four_shots(tmp_path_factory):
    """Cuts at 3, 6 and 9 s: a moving test pattern, colour bars, a zooming fractal, the pattern turned round."""
    path = tmp_path_factory.mktemp("scenes") / "four_shots.mp4"
    inputs = ["-f", "lavfi", "-i", f"testsrc2={SIZE}:duration=3", "-f", "lavfi", "-i", f"smptebars={SIZE}:duration=3",
              "-f", "lavfi", "-i", f"mandelbrot={SIZE}", "-f", "lavfi", "-i", f"testsrc2={SIZE}:duration=3"]
    return encode(path, inputs, "[2:v]trim=duration=3,setpts=PTS-STARTPTS[m];[3:v]hflip,vflip[f];"
                                "[0:v][1:v][m][f]concat=n=4:v=1[v]")


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """Colour bars, then at 2 s the same bars mirrored: the same colours in other places."""
    path = tmp_path_factory.mktemp("scenes") / "mirrored.mp4"
    inputs = ["-f", "lavfi", "-i", f"smptebars={SIZE}:duration=2", "-f", "lavfi", "-i", f"smptebars={SIZE}:duration=2"]
    return encode(path, inputs, "[1:v]hflip[f];[0:v][f]concat=n=2:v=1[v]")


@pytest.mark.parametrize("method", scenes.METHODS)
def test_both_methods_find_the_cuts_and_nothing_inside_moving_shots(four_shots, method):
    cuts, measured = scenes.scene_cuts(four_shots, method, threshold=0.3, fps=4)
    assert cuts == [3.0, 6.0, 9.0]  # sampled on a 0.25 s grid: the first frame of each new shot
    assert measured["frames_compared"] == 47 and measured["largest_change"] > 0.4
    # a lower rate sees each cut up to a sample late
    late, _ = scenes.scene_cuts(four_shots, method, threshold=0.3, fps=1)
    assert late == [3.0, 6.0, 9.0]


def test_a_cut_between_shots_of_the_same_colours_needs_the_difference_method(mirrored):
    assert scenes.scene_cuts(mirrored, "difference", 0.3)[0] == [2.0]
    assert scenes.scene_cuts(mirrored, "histogram", 0.3)[0] == []  # a histogram cannot tell a mirror image


def test_scenes_shorter_than_the_minimum_make_no_cut(four_shots):
    cuts, _ = scenes.scene_cuts(four_shots, "histogram", threshold=0.3, min_scene_s=3.5)
    assert cuts == [6.0]  # 3 s after the start is too soon; 6 s is 6 s in; 9 s only 3 s after 6
    with pytest.raises(ValueError, match="unknown scene method"):
        scenes.scene_cuts(four_shots, "optical-flow")


def test_spans_cover_the_video_and_split_long_scenes():
    assert scenes.scene_spans([3.0, 6.0], 20.0, max_s=10.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 13.0), (13.0, 20.0)]
    assert scenes.scene_spans([], 5.0, max_s=10.0) == [(0.0, 5.0)]
    assert scenes.scene_spans([0.0, 5.0, 7.0], 5.0, max_s=10.0) == [(0.0, 5.0)]  # cuts at the ends are no cuts


def test_keyframes_stage_cuts_clips_at_scene_changes(four_shots, store, settings):
    store.put_file(artifact_key("download", "source", "shots"), four_shots)
    store.put_json(artifact_key("download", "probe", "shots"), media.probe(four_shots))
    segments = [{"start": 0.5, "end": 2.0, "text": "A pattern."}, {"start": 2.5, "end": 4.5, "text": "Then bars."},
                {"start": 5.5, "end": 8.0, "text": "A fractal zooms in."}]  # the second is mostly said after 3 s
    store.put_json(artifact_key("transcribe", "asr", "shots"), {"segments": segments})
    video = record("shots", artifacts={"download": {"source": artifact_key("download", "source", "shots")},
                                       "transcribe": {"asr": artifact_key("transcribe", "asr", "shots")}})
    scene = dataclasses.replace(settings, clip_segmenter="scene", scene_method="histogram", clip_max_s=20.0)
    result = keyframes.run(video, store, scene)
    assert result.status == "succeeded"
    assert (result.metrics["clip_segmenter"], result.metrics["scene_cuts"], result.metrics["clips"]) == ("scene", 3, 4)
    clips = store.get_json(result.artifacts["clips"])["clips"]
    assert [(c["start"], c["end"], c["segments"]) for c in clips] == [
        (0.0, 3.0, [0]), (3.0, 6.0, [1]), (6.0, 9.0, [2]), (9.0, 12.0, [])]
    assert clips[2]["asr"] == "A fractal zooms in."
    assert all(clip["start"] <= frame["time"] < clip["end"] for clip in clips for frame in clip["keyframes"])
    # the sentence segmenter on the same video: one clip, the segments' sentences together
    sentences = keyframes.run(video, store, settings)
    assert sentences.metrics["clip_segmenter"] == "asr" and sentences.metrics["clips"] == 1
