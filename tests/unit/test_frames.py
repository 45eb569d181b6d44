"""SSIM keyframes on generated slide videos with known change times: sensor noise, a cross-fade, bullets
revealed one by one, a repeated slide, a VP9 file, sparse I-frames and a static 10-minute video."""

import numpy as np
import pytest

from lectern.stages.keyframes import decoding, selection, ssim
from lectern_dev.baselines import naive_keyframes
from lectern_dev.synthetic import Scene, bullet_reveal, match_changes, write_static_video, write_video
from tests.conftest import CACHE

THRESHOLD, WIDTH, GRID = 0.95, 320, (8, 12)  # the defaults
LECTURE = [
    Scene("Enzymes", ("Proteins that speed up reactions",)),
    Scene("Active Site", ("The substrate binds here",)),
    Scene("Inhibition", ("Competitive and non-competitive",), fade_s=1.0),  # a cross-fade
    *bullet_reveal("Kinetics", ["Rate rises with substrate", "Then it saturates", "Vmax and Km"]),
    Scene("Summary", ("Enzymes lower activation energy",)),
]


@pytest.fixture(scope="session")
def videos():
    """(path, truth) per case, generated once into the test cache."""
    directory = CACHE / "synthetic-v1"
    directory.mkdir(parents=True, exist_ok=True)
    cases = {
        "noisy_lecture": (LECTURE, {"noise": 6.0, "gop_s": 2.0}),
        "sparse_iframes": (LECTURE[:3], {"gop_s": 10.0}),  # x264's default keyint (250 frames at 25 fps)
        "vp9": (LECTURE[:3], {"codec": "libvpx-vp9", "size": (640, 360), "fps": 10}),
        "repeated_slide": ([LECTURE[0], LECTURE[1], Scene(LECTURE[0].title, LECTURE[0].lines)], {}),
    }
    out = {}
    for name, (scenes, options) in cases.items():
        path = directory / (f"{name}.webm" if options.get("codec") == "libvpx-vp9" else f"{name}.mp4")
        truth_file = path.with_suffix(".json")
        if not truth_file.is_file():
            truth = write_video(path, scenes, **options)
            truth_file.write_text(__import__("json").dumps(truth))
        out[name] = (str(path), __import__("json").loads(truth_file.read_text()))
    static = directory / "static_10min.mp4"
    if not static.is_file():
        write_static_video(static, 600.0)
    out["static"] = (str(static), {"duration": 600.0, "changes": []})
    return out


def detect(path, mode, dedup=True):
    samples = decoding.sample_frames(path, mode, 1.0, WIDTH)
    return [k.time for k in selection.select_keyframes(samples, THRESHOLD, GRID, dedup=dedup)]


def test_a_revealed_bullet_is_a_change_only_for_the_grid(videos):
    path, truth = videos["noisy_lecture"]
    samples = {s.time: s.gray for s in decoding.sample_frames(path, "iframes", 1.0, WIDTH)}
    before, after = samples[28.0], samples[30.0]  # "Then it saturates" appears at 30 s
    assert ssim.similarity(before, after) > 0.95  # the global score barely moves...
    assert ssim.similarity(before, after, GRID) < 0.6  # ...the cells it appears in change a lot
    assert ssim.similarity(samples[26.0], samples[28.0], GRID) > 0.97  # noise alone does not


def test_fast_path_finds_every_change_in_a_noisy_lecture(videos):
    path, truth = videos["noisy_lecture"]
    assert decoding.choose_sampling(path, max_gop_s=2.5) == "iframes"
    found = detect(path, "iframes")
    assert found[0] < 0.1  # the first frame is always a keyframe
    score = match_changes(found[1:], truth["changes"], tolerance=2.0 + 0.1)  # at most one GOP late
    assert score["recall"] >= 0.98 and score["precision"] >= 0.95, score


def test_interval_sampling_agrees(videos):
    path, truth = videos["noisy_lecture"]
    found = detect(path, "interval")
    score = match_changes(found[1:], truth["changes"], tolerance=1.0 + 0.1)
    assert score["recall"] >= 0.98 and score["precision"] >= 0.95, score


def test_sparse_iframes_are_scanned(videos):
    path, truth = videos["sparse_iframes"]
    assert decoding.iframe_spacing(path) == pytest.approx(10.0, abs=0.1)
    assert decoding.choose_sampling(path, max_gop_s=2.5) == "scan"
    for mode, lag in (("scan", 1.0 + 0.2), ("interval", 1.0 + 0.1)):  # scan samples P-frames: up to 0.16 s later
        found = detect(path, mode)
        assert match_changes(found[1:], truth["changes"], lag)["recall"] == 1.0 and len(found) == 3, mode


def test_a_single_i_frame_is_read_in_full(tmp_path):
    """Nothing to scan between: every frame is decoded, and the change is found."""
    path = tmp_path / "one-gop.mp4"
    truth = write_video(path, [Scene("One", seconds=3.0), Scene("One", ("and a bullet",), seconds=3.0)], fps=10,
                        gop_s=1000.0, size=(640, 360))
    assert decoding.iframe_spacing(str(path)) is None and decoding.choose_sampling(str(path), 2.0) == "interval"
    found = detect(str(path), "interval")
    assert len(found) == 2 and match_changes(found[1:], truth["changes"], 1.1)["recall"] == 1.0


def test_scan_reads_only_the_gops_that_change(videos):
    """Of a 10-s-GOP lecture, scan decodes the I-frames and the GOPs in which a slide changes, each only until
    it shows what the next I-frame does; a static video is I-frames only."""
    path, truth = videos["sparse_iframes"]  # 24 s: slides change at 8 and 16 s (a fade)
    assert [s.time for s in decoding.sample_frames(path, "iframes", 0.0, WIDTH)] == [0.0, 8.0, 18.0]  # x264's cut at 8
    verdicts = list(decoding.changing_gops(path, WIDTH, THRESHOLD, GRID))
    assert [(v.start, v.changes) for v in verdicts] == [(0.0, True), (8.0, True), (18.0, True)]  # the last always
    assert [v.until[0] for v in verdicts[:2]] == [8.0, 18.0]  # what each GOP comes to
    iframes = {s.time: s.gray for s in decoding.sample_frames(path, "iframes", 0.0, WIDTH)}
    assert all(np.array_equal(v.until[1].pixels, iframes[v.until[0]]) for v in verdicts[:2])  # its picture, handed on
    times = [s.time for s in decoding.sample_frames(path, "scan", 1.0, WIDTH)]
    assert len(times) == 24 and all(t % 1.0 < 0.2 for t in times)  # one a second, a P-frame at or after it
    static, _ = videos["static"]
    changing = [v.start for v in decoding.changing_gops(static, WIDTH, THRESHOLD, GRID) if v.changes]
    assert changing == [598.0]  # only the last GOP
    times = [s.time for s in decoding.sample_frames(static, "scan", 1.0, WIDTH)]
    assert len(times) == 301 and times[:3] == [0.0, 2.0, 4.0]  # every 2 s: the I-frames, nothing between


def test_a_scan_stopped_early_leaves_no_reader_running(videos):
    """Scan reads with three threads (the decoder it steers, changing_gops ahead of it, the B-frame check): a
    caller that stops after a few samples (a stage that fails) leaves none of them running."""
    import threading

    path, _ = videos["static"]  # 10 minutes: more GOPs than the readers run ahead by
    samples = decoding.sample_frames(path, "scan", 1.0, WIDTH)
    assert [next(samples).time for _ in range(3)] == [0.0, 2.0, 4.0]
    samples.close()
    for thread in threading.enumerate():
        if thread.name == "lectern-decode" or thread.name.startswith("ThreadPoolExecutor"):
            thread.join(timeout=5)
    assert not [t.name for t in threading.enumerate() if t.name == "lectern-decode"]


def test_vp9_is_read(videos):
    path, truth = videos["vp9"]
    found = detect(path, decoding.choose_sampling(path, max_gop_s=2.5))
    assert len(found) == 3 and match_changes(found[1:], truth["changes"], 2.1)["recall"] == 1.0


def test_a_slide_shown_again_yields_no_second_image(videos):
    path, truth = videos["repeated_slide"]
    assert len(detect(path, "iframes", dedup=False)) == 3
    assert len(detect(path, "iframes")) == 2


def test_slides_that_differ_in_two_digits_are_not_one_slide(tmp_path):
    """Dedup asks for more than the change threshold: "Slide 130" and "Slide 150" score 0.954 in their lowest
    cell, but are two slides; "Slide 130" shown again is still one."""
    path = tmp_path / "numbers.mp4"
    slide = lambda n: Scene(f"Slide {n}", (f"Transcription fact number {n}",), seconds=3.0)  # noqa: E731
    write_video(path, [slide(130), Scene("Another", ("Something else entirely",), seconds=3.0), slide(150),
                       slide(130)], fps=5, gop_s=1.0)
    assert len(detect(str(path), "iframes")) == 3


def test_static_ten_minutes_is_one_keyframe(videos):
    path, _ = videos["static"]
    found = list(selection.select_keyframes(decoding.sample_frames(path, "iframes", 1.0, WIDTH), THRESHOLD, GRID))
    assert len(found) == 1 and found[0].image.shape == (720, 1280, 3)


def test_naive_exact_method_agrees_on_a_short_clip(tmp_path):
    path = tmp_path / "short.mp4"
    truth = write_video(path, [Scene("One", seconds=2.0), Scene("Two", ("changed",), seconds=2.0)], fps=10,
                        size=(320, 180))
    naive = [t for t, _ in naive_keyframes(str(path), THRESHOLD, GRID)]
    assert naive == [0.0, truth["changes"][0]]  # every frame decoded: the change is found at its exact frame


def test_unreadable_file_is_corrupt_media(tmp_path):
    from lectern.errors import CorruptMedia

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(CorruptMedia):
        list(decoding.sample_frames(str(bad), "iframes", 1.0, WIDTH))



def test_ssim_map_equals_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (90, 160), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    expected, full = structural_similarity(a, b, data_range=255, full=True)
    assert np.abs(ssim.ssim_map(a, b) - full).max() < 1e-3
    assert ssim.similarity(a, b) == pytest.approx(expected, abs=1e-4)
    cells = [full[r * 45:(r + 1) * 45, c * 40:(c + 1) * 40].mean() for r in range(2) for c in range(4)]
    assert ssim.similarity(a, b, (2, 4)) == pytest.approx(min(cells), abs=1e-4)
