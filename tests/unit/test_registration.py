"""Registration of sampled frames (lectern.stages.keyframes.registration): a real photograph moved by known camera
motions is measured and moved back; a screen capture, still but for a webcam strip, is never moved; unrelated
pictures give no motion. The camera layouts in test_layouts.py hold the stage to its targets."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data

from lectern.stages.keyframes import registration
from lectern.stages.keyframes.registration import (
    Motion,
    measure_motion,
    moved_back,
    refined_motion,
    registered,
    spectra,
)
from lectern.stages.keyframes.selection import Sample

SHAPE = (180, 320)  # the frames compared: 320 pixels wide


def picture(name: str = "camera") -> np.ndarray:
    source = getattr(data, name)()
    source = source if source.ndim == 2 else source[..., 0]
    return np.asarray(Image.fromarray(source).resize(SHAPE[::-1], Image.BILINEAR))


def filmed(frame: np.ndarray, motion: Motion, noise: float = 1.5, seed: int = 0) -> np.ndarray:
    """The frame as a camera that moved by `motion` sees it (a point p shows at c + scale * (p - c) + (dy, dx)),
    with sensor noise."""
    height, width = frame.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    yy, xx = np.mgrid[:height, :width].astype(float)
    source = [cy + (yy - cy - motion.dy) / motion.scale, cx + (xx - cx - motion.dx) / motion.scale]
    seen = ndimage.map_coordinates(frame.astype(float), source, order=3, mode="nearest")
    seen += np.random.default_rng(seed).normal(0, noise, frame.shape)
    return np.clip(np.rint(seen), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("motion", [Motion(1.0, 2.0, -3.0), Motion(1.0, -0.6, 0.4), Motion(1.02, 1.5, 0.7),
                                    Motion(0.975, -4.2, -6.6)])
def test_a_camera_s_translation_and_zoom_are_measured(motion):
    frame = picture()
    measured = refined_motion(spectra(frame), filmed(frame, motion), limit=19.0)
    assert measured is not None
    # within a few tenths of a pixel at the frame's edge: 160 px from the centre times the zoom's error, plus the
    # shift's
    edge_error = abs(measured.scale - motion.scale) * 160 + max(abs(measured.dy - motion.dy),
                                                                abs(measured.dx - motion.dx))
    assert edge_error < 0.4, measured


def test_a_filmed_sequence_is_moved_back_onto_its_first_frame():
    """A hand-held camera (jitter) that slowly zooms in: every frame moved back matches the first one far better
    than it did as it came."""
    frame = picture()
    rng = np.random.default_rng(3)
    motions = [Motion(1 + 0.002 * k, *rng.uniform(-3, 3, 2)) for k in range(12)]
    samples = [Sample(float(k), filmed(frame, m, seed=k), lambda: None) for k, m in enumerate(motions)]
    metrics = {}
    out = list(registered(iter(samples), metrics))
    assert metrics["filmed"] and metrics["registered_samples"] >= 10
    first = out[0].gray.astype(float)
    inside = (slice(20, -20), slice(30, -30))  # away from the edges the motion brought in from outside
    for before, after in zip(samples[1:], out[1:]):
        error_before = np.abs(before.gray.astype(float) - samples[0].gray)[inside].mean()
        error_after = np.abs(after.gray.astype(float) - first)[inside].mean()
        assert error_after < 0.35 * error_before, (before.time, error_before, error_after)


def test_a_screen_capture_beside_a_moving_webcam_is_never_moved():
    """The slide does not move, the speaker's strip does (two of the four quarters): nothing is moved."""
    slide = np.full(SHAPE, 250, np.uint8)
    slide[20:40, 20:200], slide[60:70, 30:220], slide[90:100, 30:180] = 40, 60, 60  # a title and two lines
    face = picture("astronaut")
    rng = np.random.default_rng(1)
    samples = []
    for k in range(10):
        frame = slide.copy()
        dy, dx = rng.integers(-8, 9, 2)
        frame[:, 240:] = np.roll(face, (dy, dx), axis=(0, 1))[:, :80]  # the speaker sways
        samples.append(Sample(float(k), frame, lambda: None))
    metrics = {}
    out = list(registered(iter(samples), metrics))
    assert not metrics["filmed"] and metrics["registered_samples"] == 0
    assert all(a.gray is b.gray for a, b in zip(samples, out))


def test_unrelated_pictures_give_no_motion():
    assert measure_motion(spectra(picture("camera")), spectra(picture("astronaut")), SHAPE, limit=19.0) is None


def test_moving_back_undoes_the_motion():
    frame = picture()
    motion = Motion(1.01, 2.3, -1.7)
    back = moved_back(filmed(frame, motion, noise=0), motion)
    inside = (slice(20, -20), slice(30, -30))
    assert np.abs(back.astype(float) - frame)[inside].mean() < 3.0


def test_a_zoom_beyond_the_limit_is_not_the_camera_s(monkeypatch):
    monkeypatch.setattr(registration, "MAX_ZOOM", 0.01)
    frame = picture()
    assert measure_motion(spectra(frame), spectra(filmed(frame, Motion(1.03, 0, 0))), SHAPE, limit=19.0) is None
