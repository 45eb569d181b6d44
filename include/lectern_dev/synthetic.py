"""Slide videos with known change times, for keyframe tests and benchmarks.

Frames are drawn in Python (slides, optional sensor noise, cross-fades, bullets revealed one by one) and piped
raw to ffmpeg, so every change time is known exactly. ``write_video`` returns the ground truth.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

SIZE = (1280, 720)


@dataclass(frozen=True)
class Scene:
    title: str
    lines: tuple[str, ...] = ()
    seconds: float = 8.0
    fade_s: float = 0.0  # cross-fade from the previous scene over its first fade_s seconds
    picture: bool = False  # a person filling the frame (scikit-image's astronaut photo) instead of a slide


def render(scene: Scene, size: tuple[int, int] = SIZE) -> np.ndarray:
    from PIL import Image, ImageDraw

    from lectern_dev.corpus import _font

    width, height = size
    if scene.picture:
        from skimage import data

        frame = Image.new("RGB", size, "white")
        frame.paste(Image.fromarray(data.astronaut()).resize((height, height)), ((width - height) // 2, 0))
        return np.asarray(frame)
    scale = height / 720
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, int(120 * scale)], fill=(214, 226, 244))
    draw.text((int(60 * scale), int(25 * scale)), scene.title, font=_font(int(64 * scale)), fill=(20, 40, 90))
    for i, line in enumerate(scene.lines):
        draw.text((int(80 * scale), int((190 + 80 * i) * scale)), f"• {line}", font=_font(int(44 * scale)),
                  fill="black")
    return np.asarray(image)


def bullet_reveal(title: str, lines: Sequence[str], seconds_each: float = 6.0) -> list[Scene]:
    """One scene per revealed bullet: the slide grows a line at a time."""
    return [Scene(title, tuple(lines[: i + 1]), seconds_each) for i in range(len(lines))]


def encoder(path: Path, fps: int, gop_s: float | None, codec: str = "libx264",
            size: tuple[int, int] = SIZE) -> list[str]:
    """The ffmpeg command that encodes raw RGB frames from stdin: I-frames every `gop_s` seconds (None: the
    encoder's default, 250 frames for x264, plus its scene-cut I-frames)."""
    codec_args = {
        "libx264": ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
        "libvpx-vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M",
                       "-pix_fmt", "yuv420p"],
    }[codec]
    gop = ["-g", str(max(1, round(gop_s * fps)))] if gop_s else []
    return ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
            "-r", str(fps), "-i", "-", *codec_args, *gop, str(path)]


def write_video(path: Path, scenes: Sequence[Scene], fps: int = 25, noise: float = 0.0, gop_s: float = 2.0,
                codec: str = "libx264", size: tuple[int, int] = SIZE, seed: int = 0) -> dict:
    """Encode the scenes; returns {"duration", "changes": [start of every scene after the first], "scenes": n}.
    `noise` is the standard deviation of per-frame Gaussian noise (0-255 scale)."""
    rng = np.random.default_rng(seed)
    images = [render(scene, size).astype(np.float32) for scene in scenes]
    # A bank of noise frames drawn at random per frame: temporal noise at a fraction of the cost of fresh noise.
    bank = [rng.normal(0, noise, images[0].shape).astype(np.float32) for _ in range(16)] if noise else []
    changes, start = [], 0.0
    with subprocess.Popen(encoder(path, fps, gop_s, codec, size), stdin=subprocess.PIPE) as proc:
        for i, scene in enumerate(scenes):
            if i:
                changes.append(round(start, 3))
            frames = round(scene.seconds * fps)
            for n in range(frames):
                t = n / fps
                image = images[i]
                if i and scene.fade_s and t < scene.fade_s:
                    alpha = t / scene.fade_s
                    image = images[i - 1] * (1 - alpha) + images[i] * alpha
                if noise:
                    image = image + bank[rng.integers(len(bank))]
                proc.stdin.write(np.clip(image, 0, 255).astype(np.uint8).tobytes())
            start += frames / fps
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg could not encode {path}")
    return {"duration": round(start, 3), "changes": changes, "scenes": len(scenes)}


def write_static_video(path: Path, seconds: float, size: tuple[int, int] = SIZE, fps: int = 25) -> dict:
    """One slide for `seconds` (ffmpeg loops a single image: long videos in seconds)."""
    from PIL import Image

    image = path.with_suffix(".png")
    Image.fromarray(render(Scene("A static slide", ("Nothing changes here",)), size)).save(image)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", str(fps), "-i", str(image),
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage",
                    "-pix_fmt", "yuv420p", "-g", str(2 * fps), str(path)], check=True)
    image.unlink()
    return {"duration": seconds, "changes": [], "scenes": 1}


def match_changes(found: Sequence[float], changes: Sequence[float], tolerance: float) -> dict:
    """Recall and precision of detected change times against the truth: a detection within `tolerance` seconds
    after a true change (detections can only lag a change) matches it, each at most once."""
    unmatched = list(changes)
    hits = 0
    for moment in found:
        match = next((c for c in unmatched if 0 <= moment - c <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    return {"recall": hits / len(changes) if changes else 1.0,
            "precision": hits / len(found) if found else 1.0,
            "missed": unmatched, "extra": len(found) - hits}
