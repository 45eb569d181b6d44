"""The demo corpus: lecture-like videos made with ffmpeg (slides with known text, espeak-ng narration), their
ground truth (slide times and text), an off-topic video and one broken file.

``generate(out)`` writes ``<id>.mp4`` files and ``ground_truth.json``; ``subject_yaml(base_url)`` is the Biology
taxonomy whose knowledge points list those files' URLs. ``backfill_subject_yaml(base_url)`` is a second subject,
Biochemistry, for backfill tests: one new video and one Biology already has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT, FPS = 1280, 720, 10
CORPUS_VERSION = 4  # bump when the videos change: cached corpora are regenerated


@dataclass(frozen=True)
class Slide:
    title: str
    body: str
    narration: str
    seconds: float = 8.0


VIDEOS: dict[str, list[Slide]] = {
    "photosynthesis": [
        Slide("Photosynthesis", "Plants turn light into chemical energy",
              "Photosynthesis is how plants turn light into chemical energy. It happens in the chloroplast."),
        Slide("Light Reactions", "Water is split and oxygen is released",
              "In the light reactions, water is split and oxygen is released. Energy is stored in ATP."),
        Slide("Calvin Cycle", "Carbon dioxide is fixed into sugar",
              "In the Calvin cycle, carbon dioxide is fixed into sugar. This uses the stored energy."),
    ],
    "cell_division": [
        Slide("Mitosis", "One cell divides into two identical cells",
              "Mitosis is the division of one cell into two identical cells. Each gets a full copy of the DNA."),
        Slide("Prophase", "Chromosomes condense and become visible",
              "During prophase, the chromosomes condense and become visible under a microscope."),
        Slide("Anaphase", "Sister chromatids move to opposite poles",
              "During anaphase, sister chromatids are pulled to opposite poles of the cell."),
        Slide("Cytokinesis", "The cytoplasm splits into two cells",
              "Finally, in cytokinesis, the cytoplasm splits and two daughter cells are formed."),
    ],
    "dna_replication": [
        Slide("DNA Replication", "Each strand is a template for a new strand",
              "In DNA replication, each strand serves as a template for a new strand."),
        Slide("Helicase", "Helicase unwinds the double helix",
              "The enzyme helicase unwinds the double helix at the replication fork."),
        Slide("DNA Polymerase", "Polymerase adds nucleotides to the new strand",
              "DNA polymerase adds matching nucleotides to build the new strand."),
    ],
    # Off-topic for a Biology subject. Listed by hand with only its file name for a title, so the metadata filter
    # leaves it alone (unknown metadata never rejects); the judge rejects it on its transcript.
    "pasta_recipe": [
        Slide("Tomato Pasta", "Boil the pasta in salted water",
              "Bring a large pot of salted water to a boil and cook the pasta until tender."),
        Slide("The Sauce", "Simmer tomatoes with garlic and basil",
              "Simmer crushed tomatoes with garlic and fresh basil for twenty minutes."),
    ],
}
# Only in the Biochemistry subject (backfill).
BACKFILL_VIDEOS: dict[str, list[Slide]] = {
    "enzymes": [
        Slide("Enzymes", "Enzymes speed up chemical reactions",
              "Enzymes are proteins that speed up chemical reactions in the cell."),
        Slide("Active Site", "The substrate binds to the active site",
              "The substrate binds to the active site, where the reaction takes place."),
    ],
}
# An upload cut off after its first 3 KB (its name passes the metadata filter; ffprobe cannot read it). Not random
# bytes: ffprobe finds a stream in some random files (it once took one for raw H.263).
BROKEN = "mitosis_broken"


def subject_yaml(base_url: str) -> str:
    url = lambda name: f"{base_url.rstrip('/')}/{name}.mp4"  # noqa: E731
    return f"""\
subject: Biology
courses:
  - name: Cell Biology
    subcourses:
      - name: Energy
        points:
          - name: Photosynthesis
            urls: ["{url('photosynthesis')}", "{url('pasta_recipe')}"]
            vocabulary: [chloroplast, Calvin cycle, ATP]
      - name: Cell Cycle
        points:
          - name: Cell division and mitosis
            urls: ["{url('cell_division')}", "{url(BROKEN)}"]
            vocabulary: [prophase, anaphase, chromatids, cytokinesis]
  - name: Molecular Biology
    points:
      - name: DNA replication
        # photosynthesis.mp4 again: discovery links it to this point too instead of duplicating it
        urls: ["{url('dna_replication')}", "{url('photosynthesis')}"]
        vocabulary: [helicase, polymerase, nucleotides]
"""


def backfill_subject_yaml(base_url: str) -> str:
    url = lambda name: f"{base_url.rstrip('/')}/{name}.mp4"  # noqa: E731
    return f"""\
subject: Biochemistry
courses:
  - name: Proteins
    points:
      - name: Enzymes
        urls: ["{url('enzymes')}"]
  - name: Nucleic Acids
    points:
      - name: DNA replication
        # already processed for Biology: linked to this subject, not processed again
        urls: ["{url('dna_replication')}"]
"""


def _font(size: int):
    from PIL import ImageFont

    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",):
        if os.path.exists(candidate):
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font


def render_slide(slide: Slide, path: Path, index: int) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, WIDTH, 120], fill=(214, 226, 244))
    draw.text((60, 25), slide.title, font=_font(64), fill=(20, 40, 90))
    draw.text((60, 300), slide.body, font=_font(44), fill="black")
    draw.text((WIDTH - 140, HEIGHT - 70), f"{index + 1}", font=_font(36), fill=(120, 120, 120))
    image.save(path)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def make_video(slides: list[Slide], out: Path, work: Path) -> list[dict]:
    """Render one video; returns its ground truth (slide times and text)."""
    parts, truth, start = [], [], 0.0
    for i, slide in enumerate(slides):
        png, wav, part = work / f"s{i}.png", work / f"s{i}.wav", work / f"p{i}.mp4"
        render_slide(slide, png, i)
        _run(["espeak-ng", "-s", "150", "-w", str(wav), slide.narration])
        _run([
            "ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", str(FPS), "-i", str(png), "-i", str(wav),
            "-filter_complex", f"[1:a]adelay=500|500,apad,atrim=0:{slide.seconds},aresample=16000[a]",
            "-map", "0:v", "-map", "[a]", "-t", str(slide.seconds), "-c:v", "libx264", "-preset", "veryfast",
            "-tune", "stillimage", "-pix_fmt", "yuv420p", "-g", str(FPS * 4), "-c:a", "aac", "-ac", "1", str(part),
        ])
        parts.append(part)
        truth.append({"start": start, "end": start + slide.seconds, "title": slide.title, "body": slide.body,
                      "narration": slide.narration})
        start += slide.seconds
    listing = work / "parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    _run(["ffmpeg", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
          "-movflags", "+faststart", str(out)])
    return truth


def generate(out: Path, force: bool = False) -> dict:
    """Write the demo corpus into `out` (skipped when already there); returns the ground truth."""
    out.mkdir(parents=True, exist_ok=True)
    truth_file = out / "ground_truth.json"
    if truth_file.is_file() and not force:
        truth = json.loads(truth_file.read_text())
        if truth.get("version") == CORPUS_VERSION:
            return truth
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (make setup installs it)")
    truth: dict = {"version": CORPUS_VERSION, "videos": {}, "broken": [BROKEN], "off_topic": ["pasta_recipe"],
                   "backfill": {}}
    for group, videos in (("videos", VIDEOS), ("backfill", BACKFILL_VIDEOS)):
        for video_id, slides in videos.items():
            with tempfile.TemporaryDirectory() as tmp:
                truth[group][video_id] = {"slides": make_video(slides, out / f"{video_id}.mp4", Path(tmp))}
    (out / f"{BROKEN}.mp4").write_bytes((out / "cell_division.mp4").read_bytes()[:3000])
    truth_file.write_text(json.dumps(truth, indent=1))
    return truth
