"""ffprobe and ffmpeg helpers shared by stages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from lectern.errors import CorruptMedia

# Container formats a video may come in (ffprobe format names). Anything else -- a raw elementary stream ffprobe
# guessed from arbitrary bytes, an image, a subtitle file -- is not a video upload.
CONTAINERS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts", "mpeg", "ogg",
              "asf"}


def probe(path: str | Path) -> dict[str, Any]:
    """Container and stream facts of a media file; CorruptMedia when ffprobe cannot read it."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise CorruptMedia(f"{path.name}: empty or missing file")
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise CorruptMedia(f"ffprobe could not read {path.name}: {message.replace(f'{path}: ', '')}")
    data = json.loads(proc.stdout or "{}")
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fmt = data.get("format", {})
    if not set((fmt.get("format_name") or "").split(",")) & CONTAINERS:
        raise CorruptMedia(f"{path.name}: not a video container (ffprobe read it as {fmt.get('format_name')!r})")
    if video is None and audio is None:
        raise CorruptMedia(f"{path.name}: no audio or video stream")
    known = fmt.get("duration") or (video or {}).get("duration") or (audio or {}).get("duration")
    # A container without a duration (a stream cut from a live source, a file too short for FFmpeg's estimate) is
    # measured from its packets, never taken as 0 s: unknown is not too short.
    duration = float(known) if known else measured_duration(path)
    rotation = display_rotation(video or {})
    width, height = (video or {}).get("width"), (video or {}).get("height")
    if rotation % 180:  # a phone's recording stored sideways: what is shown (and filtered on) is turned
        width, height = height, width
    return {
        "duration_s": round(duration, 3) if duration is not None else None,
        "size_bytes": int(fmt.get("size") or path.stat().st_size),
        "format": fmt.get("format_name"),
        "has_video": video is not None,
        "has_audio": audio is not None,
        "video_codec": (video or {}).get("codec_name"),
        "width": width,  # as shown: the display matrix applied
        "height": height,
        "rotation": rotation,
        "fps": _rate((video or {}).get("avg_frame_rate")),
        "audio_codec": (audio or {}).get("codec_name"),
    }


def display_rotation(stream: dict) -> int:
    """Degrees (0, 90, 180, 270) a video stream is turned when shown: its display matrix, or an old `rotate` tag."""
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            return round(float(side_data["rotation"])) % 360
    rotate = (stream.get("tags") or {}).get("rotate")
    return round(float(rotate)) % 360 if rotate not in (None, "") else 0


def measured_duration(path: Path) -> float | None:
    """Seconds from the first packet to the end of the last, read from the container without decoding (None: no
    packet has a timestamp)."""
    import av

    with av.open(str(path)) as container:
        stream = (container.streams.video or container.streams.audio)[0]
        rate = getattr(stream, "average_rate", None)  # a frame's length where packets carry none (ASF)
        frame = int(1 / (rate * stream.time_base)) if rate else 0
        first = end = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            first = packet.pts if first is None else min(first, packet.pts)
            end = max(end or packet.pts, packet.pts + (packet.duration or frame))
    if first is None:
        return None
    return float((end - first) * stream.time_base)


def _rate(value: str | None) -> float | None:
    if not value or value in ("0/0",):
        return None
    num, _, den = value.partition("/")
    return round(float(num) / float(den or 1), 3) if float(den or 1) else None
