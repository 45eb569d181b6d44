"""The backfill's round review: drained, another round, or stuck (and what is stuck), on both state DBs."""

from datetime import timedelta

from lectern.backfill import review_round, round_confs, subject_backlog
from lectern.config import Settings
from lectern.phase_tasks import claim
from lectern.recipes import STAGES
from lectern.state.catalog import links_to_score, record_link_scores
from lectern.state.db import session_scope
from lectern.state.models import VideoStage, utcnow
from lectern.state.transitions import claim_videos, mark_failed, mark_rejected, mark_succeeded
from tests.unit.state.test_transitions import seed


def settings_for(db_url, tmp_path, **env) -> Settings:
    # metadata scoring off unless asked for: these rows come from searches that were never scored
    return Settings.from_env({"LECTERN_DB_URL": db_url, "LECTERN_HOME": str(tmp_path), "LECTERN_MAX_ATTEMPTS": "3",
                              "LECTERN_METADATA_MIN_RELEVANCE": "0", **env})


def test_round_confs_state_every_param_and_force_nothing():
    confs = round_confs("Biology", 25)
    assert list(confs) == ["discover", *STAGES]
    assert confs["discover"] == {"subject": "Biology", "force": False}
    assert all(c == {"subject": "Biology", "video_ids": [], "batch_size": 25, "force": False, "stale_only": False}
               for stage, c in confs.items() if stage != "discover")


def test_a_round_that_finished_something_goes_again_until_drained(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    seed(db_url, n=3)
    before = subject_backlog(settings, "Biology")
    assert before.ready == {"download": ["v0", "v1", "v2"]} and before.finished == 0 and not before.drained
    with session_scope(db_url) as session:  # a batch of 2: one downloaded, one rejected; v2 still waits
        claim_videos(session, "download", "r1", 2, 60, 3)
        mark_succeeded(session, "v0", "download", "r1", {}, {})
        mark_rejected(session, "v1", "download", "r1", "duration 5.0s < 10s", {})
    report = review_round(settings, "Biology", before.finished, round_number=1, max_rounds=5)
    assert report["next"] == "again" and report["finished_this_round"] == 2
    assert report["ready"] == {"download": ["v2"], "transcribe": ["v0"]}
    # the last round allowed: more to do is reported as stuck, not silently dropped
    assert review_round(settings, "Biology", before.finished, 5, 5)["next"] == "stuck"


def test_permanent_failures_are_finished_and_listed_and_the_subject_drains(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    seed(db_url, n=2)
    with session_scope(db_url) as session:
        claim_videos(session, "download", "r1", 2, 60, 3)
        mark_failed(session, "v0", "download", "r1", "CorruptMedia", "ffprobe could not read", False, 3, 0)
        mark_rejected(session, "v1", "download", "r1", "off topic", {})
    report = review_round(settings, "Biology", 0, 1, 10)
    assert report["next"] == "done" and report["ready"] == {} and report["waiting"] == {}
    assert report["failed"] == [{"video_id": "v0", "stage": "download", "error_class": "CorruptMedia",
                                 "error_message": "ffprobe could not read"}]


def test_a_round_that_finished_nothing_is_stuck_with_what_is_in_flight(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    seed(db_url, n=2)
    with session_scope(db_url) as session:
        claim_videos(session, "download", "another-run", 1, 3600, 3)  # v0: leased elsewhere
        claim_videos(session, "download", "r1", 1, 60, 3)
        mark_failed(session, "v1", "download", "r1", "DownloadFailed", "503", True, 3, 600)  # backing off
    before = subject_backlog(settings, "Biology")
    assert before.waiting == {"download": ["v0", "v1"]} and before.ready == {}
    report = review_round(settings, "Biology", before.finished, 1, 10)
    assert report["next"] == "stuck" and report["waiting"] == {"download": ["v0", "v1"]}
    with session_scope(db_url) as session:  # once the backoff has passed, the retry is ready again
        session.get(VideoStage, ("v1", "download")).retry_at = utcnow() - timedelta(seconds=1)
    assert subject_backlog(settings, "Biology").ready == {"download": ["v1"]}


def test_other_subjects_do_not_count(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    seed(db_url, n=2, subject="History")
    assert subject_backlog(settings, "Biology").drained


def test_downloads_wait_for_discoverys_metadata_scores(db_url, tmp_path):
    """A scheduled download run that falls between a search and its scoring takes none of its videos: the
    pre-download filter would judge them without their scores. The backfill counts them as in flight."""
    settings = settings_for(db_url, tmp_path, LECTERN_METADATA_MIN_RELEVANCE="0.15")
    seed(db_url, n=2)  # v0 found by two points, v1 by one; nothing scored yet
    assert claim(settings, "download", "scheduled-run") == []
    assert subject_backlog(settings, "Biology").waiting == {"download": ["v0", "v1"]}
    with session_scope(db_url) as session:
        links = links_to_score(session, "Biology")
        record_link_scores(session, [(link, 0.5, None, None) for link in links if link.video_id == "v1"]
                           + [(next(link for link in links if link.video_id == "v0"), 0.5, None, None)])
    # v1 scored; v0 still has a search result without its score
    assert subject_backlog(settings, "Biology").ready == {"download": ["v1"]}
    assert claim(settings, "download", "scheduled-run") == ["v1"]
    # with scoring off nothing waits
    assert claim(settings_for(db_url, tmp_path), "download", "another-run") == ["v0"]
