import pytest

from lectern.config import Settings
from lectern.state.ops import VideoRecord
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
                       points=fields.get("points", ("Photosynthesis",)), artifacts=artifacts or {})


@pytest.fixture
def downloaded(corpus_server, store, settings):
    """Download one demo video for real (yt-dlp from the loopback server) and return its record."""
    from lectern.stages import download

    def make(video_id):
        result = download.run(record(video_id, f"{corpus_server.base_url}/{video_id}.mp4"), store, settings)
        assert result.status == "succeeded", result.reason
        return record(video_id, artifacts={"download": result.artifacts})

    return make
