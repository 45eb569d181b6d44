"""Recorded-lecture layouts with known slide states, for keyframe tests and benchmarks.

Each layout is a timeline of segments drawn frame by frame in numpy and piped raw to ffmpeg, so the truth is
exact: which *state* (a slide, a finished board, a scroll position at rest) is on screen when. Overlays that are
not part of a state (a speaker's webcam, a pointer, a video playing inside a slide) are drawn over it.

The layouts (``LAYOUTS``):
- ``speaker_inset``: a moving, talking webcam picture in a corner that toggles off and on;
- ``moving_inset``: the webcam picture sliding to and fro along the bottom of the slides;
- ``speaker_strip``: the webcam in a side strip beside the slides;
- ``pointer``: a mouse cursor and a laser dot moving over the slides;
- ``handwriting``: boards written stroke by stroke, each left to rest, then wiped;
- ``embedded_video``: slides with a video playing in a region;
- ``talking_head``: the speaker full screen between slides;
- ``transitions``: slides changed by wipe, push and zoom animations;
- ``scrolling``: a code editor, then a web page, scrolled in steps;
- ``camera_shake``, ``camera_drift``, ``camera_keystone``, ``camera_crossing``: a camera in the lecture hall
  filming the projection screen (``filmed``): hand-held jitter; a slow pan and zoom with the exposure drifting;
  a strongly keystoned screen from the side; the lecturer walking in front of it.

Truth (``write_layout``'s return): ``{"duration", "states": [{"start", "end", "state", "kind"}]}`` where kind is
``slide`` (a state to keep: recall counts it; a second image of the same ``state`` id is an extra),
``progress`` (a board being written: an image of it is allowed, not needed), ``transient`` (an animation or a
scroll in motion: an image there is an extra) or ``face`` (the speaker full screen: an image there is an extra
unless the face filter marks it). ``score_states`` scores keyframes against it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lectern_dev.synthetic import SIZE, Scene, bullet_reveal, render

Frame = Callable[[float], np.ndarray]  # local time in the segment -> RGB frame


@dataclass
class Segment:
    seconds: float
    draw: Frame
    state: str | None  # the state's id (None for a transient)
    kind: str = "slide"


def _still(image: np.ndarray) -> Frame:
    return lambda t: image


def _slides(scenes: Sequence[Scene], size=SIZE, prefix: str = "") -> list[Segment]:
    return [Segment(s.seconds, _still(render(s, size)), f"{prefix}{s.title}|{'/'.join(s.lines)}") for s in scenes]


LECTURE = [
    Scene("Enzymes", ("Proteins that speed up reactions", "Each has its substrate"), 10.0),
    Scene("Active Site", ("The substrate binds here", "Induced fit"), 9.0),
    *bullet_reveal("Kinetics", ["Rate rises with substrate", "Then it saturates", "Vmax and Km"], 7.0),
    Scene("Inhibition", ("Competitive", "Non-competitive"), 10.0),
    Scene("Temperature", ("Optimum near 37 C", "Denatured above"), 9.0),
    Scene("Summary", ("Enzymes lower activation energy",), 10.0),
]


# --- the speaker ---------------------------------------------------------------------------------------------------

def _portrait() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # 512 x 512, a person's head and shoulders


def speaker(width: int, height: int, seed: int = 0, zoom: float = 1.1) -> Frame:
    """A webcam picture: a person in front of a wall who sways, nods, talks and gestures all the time, with the
    camera's sensor noise. `zoom`: the portrait's side over the picture's height."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    side = int(height * zoom)
    portrait = np.asarray(Image.fromarray(_portrait()).resize((side, side), Image.BILINEAR)).astype(np.int16)
    wall = np.empty((height + side, width + side, 3), np.int16)
    wall[:] = (168, 160, 150)
    wall[: (height + side) // 3] = (190, 182, 170)  # a shelf line on the wall
    noise = [rng.normal(0, 5, (height, width, 3)).astype(np.int16) for _ in range(8)]
    yy, xx = np.ogrid[:height, :width]

    def draw(t: float) -> np.ndarray:
        frame = wall[:height, :width].copy()
        # Sway and nod (a few pixels every tenth of a second), a mouth that opens and closes, a waving hand.
        x = int((width - side) / 2 + width * 0.08 * np.sin(2 * np.pi * t / 3.1))
        y = int(height * 0.05 + height * 0.04 * np.sin(2 * np.pi * t / 2.3))
        left, top = max(0, x), max(0, y)
        right, bottom = min(width, x + side), min(height, y + side)
        frame[top:bottom, left:right] = portrait[top - y:bottom - y, left - x:right - x]
        mouth_h = max(1, int(height * 0.03 * (1 + np.sin(2 * np.pi * t * 2.7))))
        cy, cx = y + int(side * 0.3), x + int(side * 0.47)
        frame[max(0, cy):max(0, cy + mouth_h), max(0, cx - side // 20):max(0, cx + side // 20)] = (110, 40, 40)
        hx = int(width * (0.5 + 0.35 * np.sin(2 * np.pi * t / 1.7)))
        hy = int(height * (0.85 + 0.1 * np.cos(2 * np.pi * t / 1.3)))
        r = max(3, height // 7)
        frame[(yy - hy) ** 2 + ((xx - hx) * 0.7) ** 2 < r * r] = (224, 172, 138)
        frame += noise[int(t * 97) % len(noise)]
        return np.clip(frame, 0, 255).astype(np.uint8)

    return draw


def with_inset(segments: list[Segment], inset: Frame, box: tuple[int, int, int, int],
               shown: Callable[[float], bool] = lambda t: True,
               moving: Callable[[float], tuple[int, int]] | None = None) -> list[Segment]:
    """The segments with `inset` drawn into box (x, y, width, height) whenever `shown` (at the video's time);
    with `moving`, at the top left corner it gives for the video's time instead of (x, y)."""
    x, y, w, h = box
    out, offset = [], 0.0

    for segment in segments:
        def draw(t, segment=segment, offset=offset):
            frame = segment.draw(t)
            if not shown(offset + t):
                return frame
            frame = frame.copy()
            left, top = moving(offset + t) if moving else (x, y)
            frame[top:top + h, left:left + w] = inset(offset + t)
            return frame

        out.append(Segment(segment.seconds, draw, segment.state, segment.kind))
        offset += segment.seconds
    return out


def _overlay(segments: list[Segment], paint: Callable[[np.ndarray, float], None]) -> list[Segment]:
    out, offset = [], 0.0
    for segment in segments:
        def draw(t, segment=segment, offset=offset):
            frame = segment.draw(t).copy()
            paint(frame, offset + t)
            return frame

        out.append(Segment(segment.seconds, draw, segment.state, segment.kind))
        offset += segment.seconds
    return out


# --- pointers ------------------------------------------------------------------------------------------------------

_ARROW = np.array([(0, 0), (0, 34), (9, 26), (15, 40), (21, 37), (15, 24), (26, 24)])


def _paint_pointers(frame: np.ndarray, t: float) -> None:
    from PIL import Image, ImageDraw

    height, width = frame.shape[:2]
    # The mouse cursor sweeps the slide on a Lissajous path (about 300 px/s); the laser dot circles and jitters.
    cx = width * (0.5 + 0.42 * np.sin(2 * np.pi * t / 7.3))
    cy = height * (0.55 + 0.35 * np.sin(2 * np.pi * t / 4.1))
    lx = width * (0.45 + 0.3 * np.cos(2 * np.pi * t / 5.3)) + 6 * np.sin(t * 31)
    ly = height * (0.5 + 0.25 * np.sin(2 * np.pi * t / 5.3)) + 6 * np.cos(t * 37)
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.polygon([tuple(p) for p in _ARROW + (int(cx), int(cy))], fill="black", outline="white")
    draw.ellipse([lx - 9, ly - 9, lx + 9, ly + 9], fill=(255, 40, 40))
    frame[:] = np.asarray(image)


# --- boards written by hand ----------------------------------------------------------------------------------------

def _board(lines: Sequence[str], size=SIZE) -> np.ndarray:
    from PIL import Image, ImageDraw

    from lectern_dev.corpus import _font

    image = Image.new("RGB", size, (246, 246, 240))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((90, 90 + 120 * i), line, font=_font(58), fill=(20, 40, 140))
    return np.asarray(image)


def handwriting(boards: Sequence[Sequence[str]], write_px_s: float = 220.0, rest_s: float = 9.0,
                size=SIZE) -> list[Segment]:
    """Each board's lines written left to right at `write_px_s` (ink appears behind a moving pen), then left to
    rest for `rest_s`: the writing is progress, the finished board a state."""
    blank = np.full((size[1], size[0], 3), (246, 246, 240), np.uint8)
    segments = []
    for n, lines in enumerate(boards):
        done = _board(lines, size)
        ink = (np.abs(done.astype(np.int16) - blank).sum(axis=2) > 30)
        rows = [(90 + 120 * i, 90 + 120 * i + 80) for i in range(len(lines))]
        extents = [int(np.nonzero(ink[a:b].any(axis=0))[0].max()) + 1 for a, b in rows]
        spans = [extent - 90 for extent in extents]
        seconds = sum(spans) / write_px_s

        def draw(t, done=done, rows=rows, spans=spans):
            frame = blank.copy()
            written = t * write_px_s
            for (a, b), span in zip(rows, spans):
                upto = 90 + int(min(span, max(0.0, written)))
                frame[a:b, :upto] = done[a:b, :upto]
                if 0 < written < span:  # the pen and the hand holding it
                    yy, xx = np.ogrid[:frame.shape[0], :frame.shape[1]]
                    frame[(yy - (b + 40)) ** 2 + (xx - upto - 30) ** 2 < 45 ** 2] = (224, 172, 138)
                    frame[a + 20:b + 10, upto:upto + 8] = (40, 40, 40)
                written -= span
            return frame

        segments.append(Segment(seconds, draw, f"board {n} writing", "progress"))
        segments.append(Segment(rest_s, _still(done), f"board {n}"))
    return segments


# --- a video inside a slide ----------------------------------------------------------------------------------------

def playing_video(width: int, height: int, seed: int = 1) -> Frame:
    """A clip that changes everywhere all the time: a drifting colour field with bouncing balls."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    balls = rng.uniform(0, 1, (4, 4))

    def draw(t: float) -> np.ndarray:
        frame = np.empty((height, width, 3), np.float32)
        frame[..., 0] = 128 + 100 * np.sin(xx / 37 + t * 2.1)
        frame[..., 1] = 128 + 100 * np.sin(yy / 23 - t * 1.7)
        frame[..., 2] = 128 + 100 * np.sin((xx + yy) / 51 + t * 2.9)
        for bx, by, vx, vy in balls:
            px = width * abs(((bx + vx * t * 0.4) % 2) - 1)
            py = height * abs(((by + vy * t * 0.5) % 2) - 1)
            frame[(xx - px) ** 2 + (yy - py) ** 2 < (height / 7) ** 2] = (250, 250, 250)
        return frame.astype(np.uint8)

    return draw


# --- transitions ---------------------------------------------------------------------------------------------------

def _transition(old: np.ndarray, new: np.ndarray, kind: str, seconds: float) -> Frame:
    from PIL import Image

    height, width = old.shape[:2]

    def draw(t: float) -> np.ndarray:
        p = min(1.0, t / seconds)
        p = p * p * (3 - 2 * p)  # eased, as presentation software does
        if kind == "wipe":
            frame = old.copy()
            frame[:, :int(width * p)] = new[:, :int(width * p)]
            return frame
        if kind == "push":
            shift = int(width * p)
            return np.concatenate([old[:, shift:], new[:, :shift]], axis=1)
        scale = max(0.05, p)  # zoom: the new slide grows from the middle over the old one
        w, h = max(2, int(width * scale)), max(2, int(height * scale))
        frame = old.copy()
        x, y = (width - w) // 2, (height - h) // 2
        frame[y:y + h, x:x + w] = np.asarray(Image.fromarray(new).resize((w, h), Image.BILINEAR))
        return frame

    return draw


def transitions(scenes: Sequence[Scene], kinds: Sequence[str], seconds: float = 1.0) -> list[Segment]:
    slides = _slides(scenes)
    out = [slides[0]]
    for i, slide in enumerate(slides[1:], start=1):
        kind = kinds[(i - 1) % len(kinds)]
        out.append(Segment(seconds, _transition(slides[i - 1].draw(0), slide.draw(0), kind, seconds), None,
                           "transient"))
        out.append(slide)
    return out


# --- scrolling screen recordings -----------------------------------------------------------------------------------

def _code_document(lines: int = 160, width: int = SIZE[0]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    mono = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
    font = ImageFont.truetype(mono, 26) if Path(mono).exists() else ImageFont.load_default(size=26)
    image = Image.new("RGB", (width, 40 * lines + 40), (30, 30, 34))
    draw = ImageDraw.Draw(image)
    words = ("def", "return", "for", "in", "if", "else", "yield", "with", "import", "class")
    for n in range(lines):
        indent = 4 * ((n * 7) % 3)
        text = f"{words[n % len(words)]} item_{n * 13 % 97}({n}, value_{n % 11}) + total_{n * 3}"
        draw.text((20, 20 + 40 * n), f"{n + 1:4d}", font=font, fill=(110, 110, 120))
        draw.text((110 + indent * 14, 20 + 40 * n), text, font=font,
                  fill=[(86, 156, 214), (206, 145, 120), (180, 200, 160), (220, 220, 170)][n % 4])
    return np.asarray(image)


def _page_document(paragraphs: int = 24, width: int = SIZE[0]) -> np.ndarray:
    from PIL import Image, ImageDraw

    from lectern_dev.corpus import _font

    image = Image.new("RGB", (width, 260 * paragraphs + 200), "white")
    draw = ImageDraw.Draw(image)
    for n in range(paragraphs):
        top = 60 + 260 * n
        draw.text((80, top), f"Section {n + 1}: topic {n * 7 % 31}", font=_font(40), fill=(30, 60, 140))
        for k in range(4):
            draw.text((80, top + 60 + 40 * k), f"Paragraph {n + 1} line {k + 1}: words about item {n * 4 + k}",
                      font=_font(26), fill=(40, 40, 40))
        draw.rectangle([900, top + 10, 1180, top + 200], fill=[(200, 220, 240), (240, 220, 200)][n % 2])
    return np.asarray(image)


def scrolling(document: np.ndarray, steps: Sequence[int], rest_s: float = 8.0, scroll_s: float = 1.0,
              name: str = "page", size=SIZE) -> list[Segment]:
    """The document viewed `size[1]` pixels high, at rest, then scrolled by each step (pixels) over `scroll_s`."""
    height = size[1]

    def view(top: int) -> np.ndarray:
        return document[top:top + height]

    segments, top = [Segment(rest_s, _still(view(0)), f"{name} at 0")], 0
    for step in steps:
        start, end = top, top + step

        def draw(t, start=start, end=end):
            p = min(1.0, t / scroll_s)
            return view(int(start + (end - start) * p * p * (3 - 2 * p)))

        segments.append(Segment(scroll_s, draw, None, "transient"))
        segments.append(Segment(rest_s, _still(view(end)), f"{name} at {end}"))
        top = end
    return segments


def talking_head(seconds: float, size=SIZE, seed: int = 2) -> Segment:
    return Segment(seconds, speaker(size[0], size[1], seed, zoom=1.6), None, "face")  # the face: 7% of the frame


# --- a camera in the lecture hall ----------------------------------------------------------------------------------

def _person(height: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A lecturer seen from the audience: (RGB picture, mask), head and shoulders over a dark suit, a quarter as wide
    as tall."""
    width = height // 4
    yy, xx = np.ogrid[:height, :width]
    head_r = width // 4
    mask = ((yy - head_r * 1.2) ** 2 + (xx - width / 2) ** 2 < head_r ** 2) | (
        (yy > head_r * 2.1) & (np.abs(xx - width / 2) < width / 2 - np.maximum(0, head_r * 3 - yy) * 0.4))
    shade = np.random.default_rng(seed).normal(0, 6, (height, width, 1))
    picture = np.where(yy < head_r * 2.2, np.array([196, 150, 122]), np.array([52, 56, 70]))[..., None, :]
    picture = np.broadcast_to(picture, (height, width, 3)) + shade
    return np.clip(picture, 0, 255).astype(np.uint8), mask


def filmed(segments: list[Segment], size=SIZE, seed: int = 5, shake_px: float = 0.0,
           pan_px: tuple[float, float] = (0.0, 0.0), zoom: float = 0.0, keystone: float = 0.06,
           screen: float = 0.62, crossings: Sequence[tuple[float, float]] = (),
           exposure: float = 0.04) -> list[Segment]:
    """The segments as a camera in the lecture hall films them. Each frame is projected on a screen, keystoned
    (`keystone`: how much narrower its top edge is, as a share), `screen` of the room's width, in a dim room. The
    camera's picture moves: `shake_px` of hand-held jitter (a few frequencies, 0.3-3 Hz), a slow pan of `pan_px`
    and a zoom of `zoom` (a share) over the video. Exposure and white balance drift by `exposure`, with sensor
    noise. The lecturer walks across in front of the screen during each of `crossings` ((start, seconds) at the
    video's time; 4 s is a walking pace). The states stay those of the segments: none of this changes what is on
    the screen."""
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    duration = sum(segment.seconds for segment in segments)
    margin = int(width * 0.1)
    room_w, room_h = width + 2 * margin, height + 2 * margin
    room = np.empty((room_h, room_w, 3), np.float32)
    room[:] = np.linspace(70, 40, room_h)[:, None, None] * np.array([1.0, 0.95, 0.85])  # a wall, darker below
    room[int(room_h * 0.82):] = (58, 48, 40)  # the stage's floor
    screen_w = width * screen
    left, top = (room_w - screen_w) / 2, margin + height * 0.1
    bottom = top + screen_w * 9 / 16
    inset = screen_w * keystone / 2
    corners = np.float32([[left + inset, top], [left + screen_w - inset, top],
                          [left + screen_w, bottom], [left, bottom]])
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    projection = cv2.getPerspectiveTransform(source, corners)
    lit = cv2.warpPerspective(np.ones((height, width), np.float32), projection, (room_w, room_h))[..., None]
    person, person_mask = _person(int(room_h * 0.6), seed)  # 1.75 m tall before a screen 3.5 m wide
    phases = rng.uniform(0, 2 * np.pi, (2, 3))
    frequencies = (0.3, 1.1, 2.9)
    noise = [rng.normal(0, 4, (height, width, 3)).astype(np.float32) for _ in range(8)]
    gain_phase = rng.uniform(0, 2 * np.pi, 3)

    def film(image: np.ndarray, t: float) -> np.ndarray:
        projected = cv2.warpPerspective(image.astype(np.float32) * 0.92, projection, (room_w, room_h))
        frame = room * (1 - lit) + projected * lit
        for start, seconds in crossings:  # walking left to right across the screen, feet below the picture
            if start <= t < start + seconds:
                x = int(left - person.shape[1] + (screen_w + person.shape[1]) * (t - start) / seconds)
                y = room_h - person.shape[0]
                a, b = max(0, x), min(room_w, x + person.shape[1])
                if a < b:
                    spot = frame[y:, a:b]
                    spot[person_mask[:, a - x:b - x]] = person[:, a - x:b - x][person_mask[:, a - x:b - x]]
        share = t / duration if duration else 0.0
        jitter = [shake_px * sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(frequencies, phase)) / 2
                  for phase in phases]
        scale = 1 + zoom * share
        # room -> picture: the picture's centre looks at the room's centre, moved by the pan and the jitter
        cx, cy = room_w / 2 + pan_px[0] * share + jitter[0], room_h / 2 + pan_px[1] * share + jitter[1]
        camera = np.float32([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])
        picture = cv2.warpAffine(frame, camera, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        gains = 1 + exposure * np.sin(2 * np.pi * t / 23.0 + gain_phase)
        picture = picture * gains.astype(np.float32) + noise[int(t * 97) % len(noise)]
        return np.clip(picture, 0, 255).astype(np.uint8)

    out, offset = [], 0.0
    for segment in segments:
        def draw(t, segment=segment, offset=offset):
            return film(segment.draw(t), offset + t)

        out.append(Segment(segment.seconds, draw, segment.state, segment.kind))
        offset += segment.seconds
    return out


# --- the layouts ---------------------------------------------------------------------------------------------------

def build(name: str, size=SIZE) -> list[Segment]:
    width, height = size
    if name == "speaker_inset":
        box = (width - 256 - 16, height - 144 - 16, 256, 144)
        return with_inset(_slides(LECTURE, size), speaker(256, 144), box, lambda t: not (28 <= t < 47))
    if name == "moving_inset":  # the webcam slides to and fro along the bottom (a presenter tool's floating window)
        w, h = width // 4, height // 4
        span, period = width - w - 32, 20.0

        def along(t: float) -> tuple[int, int]:
            return 16 + round(span * (1 - np.cos(2 * np.pi * t / period)) / 2), height - h - 16

        return with_inset(_slides(LECTURE, size), speaker(w, h, seed=4), (0, 0, w, h), moving=along)
    if name == "camera_shake":  # hand-held: the picture jitters by a few pixels all the time
        return filmed(_slides(LECTURE, size), size, shake_px=width / 128)
    if name == "camera_drift":  # a slow pan and zoom, and the exposure drifting
        return filmed(_slides(LECTURE, size), size, pan_px=(width * 0.07, -height * 0.04), zoom=0.04,
                      exposure=0.08)
    if name == "camera_keystone":  # from the side: a strongly keystoned, smaller screen, a tripod's wobble
        return filmed(_slides(LECTURE, size), size, keystone=0.22, screen=0.5, shake_px=width / 512)
    if name == "camera_crossing":  # the lecturer walks in front of the screen, three times
        return filmed(_slides(LECTURE, size), size, crossings=((3.0, 4.0), (27.5, 4.0), (51.0, 4.0)),
                      shake_px=width / 512)
    if name == "speaker_strip":
        strip = width // 4
        slides = [Segment(s.seconds, lambda t, s=s: np.pad(s.draw(t), ((0, 0), (0, strip), (0, 0))), s.state)
                  for s in _slides(LECTURE, (width - strip, height))]
        return with_inset(slides, speaker(strip, height), (width - strip, 0, strip, height))
    if name == "pointer":
        return _overlay(_slides(LECTURE, size), _paint_pointers)
    if name == "handwriting":
        return handwriting([("F = m a", "a = dv / dt"), ("E = m c^2", "p = m v", "W = F d"),
                            ("v = u + a t", "s = u t + a t^2 / 2")], size=size)
    if name == "embedded_video":
        scenes = [Scene("Mitosis", ("Watch the chromosomes",), 10.0), Scene("Anaphase", ("They separate",), 10.0),
                  Scene("Cytokinesis", ("The cell divides",), 9.0), Scene("Meiosis", ("Two divisions",), 10.0),
                  Scene("Summary", ("Growth and repair",), 9.0)]
        clip = playing_video(480, 270)
        segments = _slides(scenes, size)
        box = (width - 480 - 60, 330, 480, 270)
        with_video = with_inset(segments[:3], clip, box)
        return with_video + segments[3:4] + with_inset(segments[4:], clip, (60, 400, 480, 270))
    if name == "talking_head":
        slides = _slides(LECTURE[:6], size)
        return [*slides[:2], talking_head(14.0, size), *slides[2:5], talking_head(10.0, size, seed=3), slides[5]]
    if name == "transitions":
        scenes = [Scene(f"Slide {n}", (f"Point {n}.1", f"Point {n}.2"), 8.0) for n in range(1, 8)]
        return transitions(scenes, ("wipe", "push", "zoom"))
    if name == "scrolling":
        return (scrolling(_code_document(), [480, 320, 640, 400], name="editor", size=size)
                + scrolling(_page_document(), [520, 700, 360], name="page", size=size))
    raise ValueError(f"unknown layout {name!r}: one of {', '.join(LAYOUTS)}")


LAYOUTS = ("speaker_inset", "moving_inset", "speaker_strip", "pointer", "handwriting", "embedded_video",
           "talking_head", "transitions", "scrolling", "camera_shake", "camera_drift", "camera_keystone",
           "camera_crossing")


def write_layout(path: Path, name: str, fps: int = 10, gop_s: float = 1.0, codec: str = "libx264",
                 size=SIZE) -> dict:
    """Encode layout `name`; returns its truth (see the module's docstring)."""
    from lectern_dev.synthetic import encoder

    segments = build(name, size)
    states, start = [], 0.0
    with subprocess.Popen(encoder(path, fps, gop_s, codec, size), stdin=subprocess.PIPE) as proc:
        for j, segment in enumerate(segments):
            count = round(segment.seconds * fps)
            # An animation's last frames can already look exactly like where it comes to rest (a wipe over white):
            # the truth counts them as that state.
            target = segments[j + 1].draw(0) if segment.kind == "transient" and j + 1 < len(segments) else None
            settled = None  # the first frame from which on the animation looks like its end
            for n in range(count):
                frame = np.ascontiguousarray(segment.draw(n / fps), np.uint8)
                if target is not None:
                    same = np.array_equal(frame, target)
                    settled = (n if settled is None else settled) if same else None
                proc.stdin.write(frame.tobytes())
            shown = count if settled is None else settled
            states.append({"start": round(start, 3), "end": round(start + shown / fps, 3), "state": segment.state,
                           "kind": segment.kind})
            start += count / fps
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg could not encode {path}")
    for before, after in zip(states, states[1:]):
        if before["kind"] == "transient":
            after["start"] = before["end"]  # the state begins where the animation already shows it
    return {"duration": round(start, 3), "states": states, "layout": name}


def score_states(keyframes: Sequence[tuple[float, bool]], truth: dict) -> dict:
    """Recall and precision of keyframes (time, marked as a face) against a layout's states. A keyframe shows the
    state on screen at its time; the first image of a slide state is a hit, any other image of it is an extra, and
    so is an image of a transient or an unmarked image of a face. Images of a board being written are allowed."""
    states = truth["states"]
    wanted = {s["state"] for s in states if s["kind"] == "slide"}
    seen: set[str] = set()
    hits = extra = progress = faces = 0
    for moment, face in keyframes:
        state = next((s for s in states if s["start"] <= moment < s["end"]), states[-1])
        if state["kind"] == "progress":
            progress += 1
        elif state["kind"] == "face" and face:
            faces += 1
        elif state["kind"] == "slide" and state["state"] not in seen:
            seen.add(state["state"])
            hits += 1
        else:
            extra += 1
    counted = hits + extra
    return {"recall": hits / len(wanted) if wanted else 1.0, "precision": hits / counted if counted else 1.0,
            "missed": sorted(wanted - seen), "extra": extra, "progress_keyframes": progress,
            "face_keyframes": faces, "keyframes": len(keyframes)}
