import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.stage_types import VideoRecord
from lectern.store import LocalStore


@pytest.fixture
def settings(tmp_path, tiny_models):
    from tests.conftest import model_environment

    return Settings.from_env({"LECTERN_HOME": str(tmp_path / "home"), **model_environment(tiny_models)})


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def record(video_id, url="", artifacts=None, **fields):
    return VideoRecord(id=video_id, url=url, title=fields.get("title", video_id), description="",
                       duration_s=fields.get("duration_s"), subjects=fields.get("subjects", ("Biology",)),
                       points=fields.get("points", ("Photosynthesis",)), vocabulary=fields.get("vocabulary", ()),
                       artifacts=artifacts or {})


@pytest.fixture
def downloaded(corpus_server, store, settings):
    """Download one demo video for real (yt-dlp from the loopback server) and return its record."""
    from lectern.stages.download import run as download

    def make(video_id):
        result = download.run(record(video_id, f"{corpus_server.base_url}/{video_id}.mp4"), store, settings)
        assert result.status == "succeeded", result.reason
        return record(video_id, artifacts={"download": result.artifacts})

    return make


@pytest.fixture
def synthetic_video(tmp_path, store):
    """Put a generated video (ffmpeg lavfi; espeak-ng for speech) into the store, probed like a download."""
    import subprocess

    from lectern.stages.download import media

    def make(video_id: str, seconds: float, audio: str) -> VideoRecord:
        path = tmp_path / f"{video_id}.mp4"
        video = ["-f", "lavfi", "-i", f"color=c=white:s=320x240:d={seconds}:r=10"]
        if audio == "noise":
            inputs = video + ["-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.2:r=16000"]
        elif audio == "speech":
            wav = tmp_path / f"{video_id}.wav"
            subprocess.run(["espeak-ng", "-w", str(wav), "Cells divide. This video is short."], check=True)
            inputs = video + ["-i", str(wav), "-af", "apad"]
        else:
            inputs = video
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *inputs, "-t", str(seconds), "-c:v", "libx264",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)
        store.put_file(artifact_key("download", "source", video_id), path)
        store.put_json(artifact_key("download", "probe", video_id), media.probe(path))
        return record(video_id, artifacts={"download": {"source": artifact_key("download", "source", video_id)}})

    return make
