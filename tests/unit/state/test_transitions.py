"""State transitions on the embedded SQLite and on the real Postgres."""

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from lectern.state.catalog import FoundVideo, PointSpec, points_to_search, record_search, sync_subject
from lectern.state.db import current_revision, engine_for, session_scope
from lectern.state.models import VideoSource, VideoStage, utcnow
from lectern.state.reports import funnel, video_record
from lectern.state.transitions import (
    LeaseLost,
    NotClaimable,
    claim_one,
    claim_videos,
    mark_failed,
    mark_rejected,
    mark_succeeded,
    release_expired_leases,
    reset_for_rerun,
)

POINTS = [PointSpec("Cells / Mitosis", "Mitosis", "mitosis lecture"),
          PointSpec("Cells / Meiosis", "Meiosis", "meiosis")]


def seed(url, n=5, subject="Biology"):
    with session_scope(url) as session:
        ids = sync_subject(session, subject, POINTS)
        found = [FoundVideo(f"v{i}", f"http://x/v{i}.mp4", title=f"video {i}") for i in range(n)]
        record_search(session, ids[0], found, {})
        # v0 found again by the second point: linked, not duplicated
        record_search(session, ids[1], [FoundVideo("v0", "http://x/v0.mp4")], {})
    return ids


def test_schema_comes_from_alembic(db_url):
    assert current_revision(db_url) == "0013"


def test_discovery_dedups_and_links(db_url):
    ids = seed(db_url)
    with session_scope(db_url) as session:
        assert funnel(session)["download"] == {"pending": 5}
        links = session.scalars(select(VideoSource).where(VideoSource.video_id == "v0")).all()
        assert sorted(link.point_id for link in links) == sorted(ids)
        assert points_to_search(session, "Biology") == []
        record = video_record(session, "v0")
        assert record.subjects == ("Biology",) and set(record.points) == {"Mitosis", "Meiosis"}


def test_changed_query_is_searched_again(db_url):
    seed(db_url)
    with session_scope(db_url) as session:
        sync_subject(session, "Biology", [PointSpec("Cells / Mitosis", "Mitosis", "a new query"), POINTS[1]])
        assert [path for _, path in points_to_search(session, "Biology")] == ["Cells / Mitosis"]


def test_claim_lifecycle(db_url):
    seed(db_url)
    with session_scope(db_url) as session:
        claimed = claim_videos(session, "download", "run-1", 3, 60, 3)
    assert len(claimed) == 3
    with session_scope(db_url) as session:
        rest = sorted(set(f"v{i}" for i in range(5)) - set(claimed))
        assert claim_videos(session, "download", "run-2", 10, 60, 3) == rest
    first, second, third = claimed
    with session_scope(db_url) as session:
        claim_one(session, first, "download", "run-1", 60, 3)  # already leased to run-1: fine
        mark_succeeded(session, first, "download", "run-1", {"source": "k"}, {"duration_s": 30}, "1")
        mark_rejected(session, second, "download", "run-1", "duration 5.0s < 10s", {"duration_s": 5})
        assert mark_failed(session, third, "download", "run-1", "DownloadFailed", "timeout", True, 3, 0) is True
    with session_scope(db_url) as session:
        rows = {r.video_id: r for r in session.scalars(select(VideoStage).where(VideoStage.stage == "download"))}
        assert rows[first].status == "succeeded" and rows[first].lease_owner is None
        assert rows[second].status == "rejected" and rows[second].reason == "duration 5.0s < 10s"
        assert rows[third].status == "failed" and rows[third].error_kind == "transient"
        # success made the next stage pending
        assert session.get(VideoStage, (first, "transcribe")).status == "pending"
        # a transient failure is claimable again once its backoff passed
        assert claim_videos(session, "download", "run-3", 10, 60, 3) == [third]


def test_permanent_failure_and_exhausted_attempts_are_final(db_url):
    seed(db_url, n=2)
    with session_scope(db_url) as session:
        claim_videos(session, "download", "r", 2, 60, 1)
        assert mark_failed(session, "v0", "download", "r", "CorruptMedia", "bad", False, 3, 0) is False
        assert mark_failed(session, "v1", "download", "r", "DownloadFailed", "503", True, 1, 0) is False
    with session_scope(db_url) as session:
        assert claim_videos(session, "download", "r2", 10, 60, 1) == []
        with pytest.raises(NotClaimable, match="failed"):
            claim_one(session, "v0", "download", "r2", 60, 1)
        assert reset_for_rerun(session, "download", video_ids=["v0"]) == 1
        assert claim_one(session, "v0", "download", "r2", 60, 1).status == "running"


def test_force_needs_a_scope(db_url):
    with session_scope(db_url) as session:
        with pytest.raises(ValueError):
            reset_for_rerun(session, "download")


def test_expired_lease_is_reclaimed_and_the_old_owner_cannot_write(db_url):
    seed(db_url, n=1)
    with session_scope(db_url) as session:
        claim_videos(session, "download", "crashed-run", 1, 60, 3)
        session.get(VideoStage, ("v0", "download")).lease_expires_at = utcnow() - timedelta(seconds=1)
    with session_scope(db_url) as session:
        assert release_expired_leases(session, 3) == ["v0"]
        row = session.get(VideoStage, ("v0", "download"))
        assert (row.status, row.error_class, row.error_kind) == ("failed", "LeaseExpired", "transient")
        assert claim_videos(session, "download", "new-run", 1, 60, 3) == ["v0"]
    with session_scope(db_url) as session:
        with pytest.raises(LeaseLost):
            mark_succeeded(session, "v0", "download", "crashed-run", {}, {})


def test_each_claim_has_its_own_token_and_only_the_latest_may_write(db_url):
    """Airflow's retry of a task has the same owner as the try it replaces (dag_id:run_id): the retry's claim must
    fence the earlier try, which may still be running on a lost worker."""
    from lectern.state.transitions import check_lease, renew_lease

    seed(db_url, n=1)
    with session_scope(db_url) as session:
        claim_videos(session, "download", "dag:run", 1, 60, 3)  # the phase's claim task
        first = claim_one(session, "v0", "download", "dag:run", 60, 3).lease_token  # try 1
    with session_scope(db_url) as session:
        second = claim_one(session, "v0", "download", "dag:run", 60, 3).lease_token  # try 2, same owner
    assert first and second and first != second
    with session_scope(db_url) as session:
        with pytest.raises(LeaseLost):
            check_lease(session, "v0", "download", first)
        assert not renew_lease(session, "v0", "download", first, 60)
        check_lease(session, "v0", "download", second)
        assert renew_lease(session, "v0", "download", second, 60)
    with session_scope(db_url) as session:
        with pytest.raises(LeaseLost, match="another claim took it"):
            mark_succeeded(session, "v0", "download", "dag:run", {}, {}, token=first)
        mark_succeeded(session, "v0", "download", "dag:run", {}, {}, token=second)
        assert session.get(VideoStage, ("v0", "download")).attempts == 1  # one claim task, two tries of it


def test_a_takedown_fences_a_stage_whose_lease_expired(db_url):
    """`forget` takes an expired lease as not running: the hung stage behind it must not write after it."""
    from lectern.state.transitions import check_lease, forget_video

    seed(db_url, n=1)
    with session_scope(db_url) as session:
        token = claim_one(session, "v0", "download", "hung-run", 60, 3).lease_token
        session.get(VideoStage, ("v0", "download")).lease_expires_at = utcnow() - timedelta(seconds=1)
    with session_scope(db_url) as session:
        forget_video(session, "v0", "takedown")
    with session_scope(db_url) as session:
        with pytest.raises(LeaseLost):
            check_lease(session, "v0", "download", token)


def test_the_last_attempt_expiring_is_a_permanent_failure(db_url):
    seed(db_url, n=1)
    with session_scope(db_url) as session:
        claim_videos(session, "download", "run-1", 1, 60, 2)
        session.get(VideoStage, ("v0", "download")).attempts = 2  # its last attempt
        session.get(VideoStage, ("v0", "download")).lease_expires_at = utcnow() - timedelta(seconds=1)
    with session_scope(db_url) as session:
        assert release_expired_leases(session, 2) == ["v0"]
        row = session.get(VideoStage, ("v0", "download"))
        assert (row.error_class, row.error_kind) == ("LeaseExpired", "permanent")
        assert "attempt 2 of 2" in row.error_message
        assert claim_videos(session, "download", "run-2", 1, 60, 2) == []  # labelled as what it is: final


@pytest.mark.parametrize("prefilter,searched,listed", [(None, True, False), (True, True, True),
                                                        (False, False, False)])
def test_metadata_scores_judge_search_results_and_listed_videos_only_by_choice(db_url, prefilter, searched, listed):
    points = [PointSpec("Cells / Mitosis", "Mitosis", "mitosis lecture"),
              PointSpec("Cells / Meiosis", "Meiosis", "meiosis", urls=("http://x/listed.mp4",))]
    with session_scope(db_url) as session:
        ids = sync_subject(session, "Biology", points, prefilter=prefilter)
        record_search(session, ids[0], [FoundVideo("found", "http://x/found.mp4"), FoundVideo("both", "http://x/b")],
                      {})
        record_search(session, ids[1], [FoundVideo("listed", "http://x/listed.mp4"), FoundVideo("both", "http://x/b")],
                      {})
        judged = {v: video_record(session, v).metadata_judged for v in ("found", "listed", "both")}
    # a video also listed by hand for another point is the user's choice there too
    assert judged == {"found": searched, "listed": listed, "both": searched and listed}


def test_a_claim_takes_the_oldest_rows_of_every_kind_together(db_url):
    """Pending rows, an expired lease and a retry that is due are claimed in one order (when each row opened),
    `limit` at most, whichever kind they are."""
    seed(db_url, n=6)
    opened = utcnow() - timedelta(hours=1)
    with session_scope(db_url) as session:
        for n, row in enumerate(session.scalars(select(VideoStage).order_by(VideoStage.video_id))):
            row.created_at = opened + timedelta(minutes=n)  # v0 oldest .. v5 newest
    with session_scope(db_url) as session:
        assert claim_videos(session, "download", "r1", 2, 60, 3, video_ids=["v3", "v5"]) == ["v3", "v5"]
        assert mark_failed(session, "v3", "download", "r1", "DownloadFailed", "503", True, 3, 0) is True
        session.get(VideoStage, ("v5", "download")).lease_expires_at = utcnow() - timedelta(seconds=1)
        assert claim_videos(session, "download", "r1", 1, 60, 3, video_ids=["v4"]) == ["v4"]  # leased, not due
    with session_scope(db_url) as session:  # pending v0-v2, retry due v3, expired v5; v4 is held
        assert claim_videos(session, "download", "r2", 4, 60, 3) == ["v0", "v1", "v2", "v3"]
        assert claim_videos(session, "download", "r2", 4, 60, 3) == ["v5"]


def test_a_claim_reads_its_rows_in_the_order_of_the_claim_index(sqlite_url):
    """The claim's query walks the (stage, status, created_at, video_id) index in order, sorts nothing and tests
    each row's subject on its own: it reads about `limit` rows, however many wait (a sort, or a list of the
    subject's videos, would read them all)."""
    from lectern.state.queries import claimable_kinds, scoped

    seed(sqlite_url, n=3)
    with session_scope(sqlite_url) as session:
        for kind in claimable_kinds(utcnow(), 3):
            query = scoped(select(VideoStage).where(VideoStage.stage == "download", kind), None, "Biology",
                           row_by_row=True)
            query = query.order_by(VideoStage.created_at, VideoStage.video_id).limit(100)
            sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
            plan = " | ".join(row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert "ix_video_stages_claim" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
            assert "LIST SUBQUERY" not in plan, plan  # the subject's videos are not listed first


def test_a_rerun_of_many_videos_drops_their_later_stages_in_batches(db_url, monkeypatch):
    import lectern.state.transitions as transitions

    monkeypatch.setattr(transitions, "IN_LIST", 2)  # five videos: three batches
    seed(db_url, n=5)
    with session_scope(db_url) as session:
        for video_id in claim_videos(session, "download", "r", 5, 60, 3):
            mark_succeeded(session, video_id, "download", "r", {}, {})
        claim_videos(session, "transcribe", "r", 5, 60, 3)
    with session_scope(db_url) as session:
        assert reset_for_rerun(session, "download", subject="Biology") == 5
    with session_scope(db_url) as session:
        assert funnel(session)["download"] == {"pending": 5} and funnel(session)["transcribe"] == {}


def test_subject_filter(db_url):
    seed(db_url, n=2)
    with session_scope(db_url) as session:
        other = sync_subject(session, "History", [PointSpec("Rome", "Rome", "rome")])
        record_search(session, other[0], [FoundVideo("h1", "http://x/h1.mp4")], {})
    with session_scope(db_url) as session:
        assert claim_videos(session, "download", "r", 10, 60, 3, subject="History") == ["h1"]
        assert funnel(session, "Biology")["download"] == {"pending": 2}


def test_concurrent_claimers_skip_locked_rows(pg_url):
    """Two open transactions on the real Postgres: the second skips the first's locked rows."""
    seed(pg_url, n=6)
    make = sessionmaker(engine_for(pg_url))
    first, second = make(), make()
    try:
        a = claim_videos(first, "download", "run-a", 3, 60, 3)  # rows locked, not committed
        b = claim_videos(second, "download", "run-b", 6, 60, 3)
        assert len(a) == 3 and len(b) == 3 and not set(a) & set(b)
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    with session_scope(pg_url) as session:
        owners = session.execute(text("select lease_owner, count(*) from video_stages group by lease_owner")).all()
        assert sorted(owners) == [("run-a", 3), ("run-b", 3)]


def test_a_claim_on_sqlite_waits_for_an_open_one_and_never_takes_its_rows(sqlite_url):
    """A claims and holds its transaction open; B claims meanwhile. Python's sqlite3 would let B read the rows A is
    taking (it begins a transaction only at the first write), and both would run them; B must wait for A's commit
    and then find them taken."""
    import threading

    seed(sqlite_url, n=3)
    make = sessionmaker(engine_for(sqlite_url))
    first = make()
    taken_by_b: list[list[str]] = []
    try:
        a = claim_videos(first, "download", "run-a", 3, 60, 3)  # leased, not committed
        second = threading.Thread(target=lambda: taken_by_b.append(_claim(sqlite_url, "run-b")))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # B waits on A's transaction...
        first.commit()
    finally:
        first.close()
    second.join(timeout=30)
    assert sorted(a) == ["v0", "v1", "v2"] and taken_by_b == [[]]  # ...and then finds nothing left to take


def _claim(url: str, owner: str) -> list[str]:
    with session_scope(url) as session:
        return claim_videos(session, "download", owner, 3, 60, 3)


def test_concurrent_searches_finding_the_same_videos_both_succeed(pg_url):
    """Two points' searches in parallel (as Airflow runs them) share videos: the second waits for the first's
    commit on the shared rows, then links them; no unique-key failure, no lost result, no deadlock."""
    import threading

    with session_scope(pg_url) as session:
        first_point, second_point = sync_subject(session, "Biology", POINTS)
    make = sessionmaker(engine_for(pg_url))
    first = make()
    outcome = {}
    try:
        record_search(first, first_point, [FoundVideo(v, f"http://x/{v}.mp4") for v in ("v3", "v1", "v2")], {})

        def second_search():
            with session_scope(pg_url) as session:
                outcome["second"] = record_search(
                    session, second_point, [FoundVideo(v, f"http://x/{v}.mp4") for v in ("v2", "v4", "v1")], {})

        thread = threading.Thread(target=second_search)
        thread.start()
        thread.join(timeout=2)
        assert thread.is_alive()  # waiting on the first search's uncommitted v1/v2
        first.commit()
        thread.join(timeout=30)
    finally:
        first.close()
    assert outcome["second"] == {"found": 3, "new_videos": 1, "new_links": 3}
    with session_scope(pg_url) as session:
        assert funnel(session)["download"] == {"pending": 4}
        ranks = {(link.video_id, link.point_id): link.rank for link in session.scalars(select(VideoSource))}
    assert ranks[("v1", second_point)] == 3 and ranks[("v2", second_point)] == 1  # the search's own ranks


def test_migrations_match_the_models(db_url):
    """Alembic's head schema is exactly what the models declare (no change left un-migrated)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from lectern.state.models import Base

    with engine_for(db_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_db_upgrade_on_a_fresh_home(tmp_path):
    """`lectern db upgrade` where LECTERN_HOME does not exist yet: the SQLite file's folder is made, the schema
    is at head."""
    import os
    import subprocess
    import sys

    home = tmp_path / "new" / "home"
    proc = subprocess.run([sys.executable, "-m", "lectern", "db", "upgrade"], capture_output=True, text=True,
                          env={**os.environ, "LECTERN_HOME": str(home), "LECTERN_DB_URL": f"sqlite:///{home}/state.db"},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert current_revision(f"sqlite:///{home}/state.db") is not None
