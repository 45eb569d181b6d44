"""Every phase DAG parses, exactly one per phase, and parsing touches no database, store or network."""

import subprocess
import sys
import textwrap

from lectern.recipes import PHASES, upstream_phases
from tests.conftest import ROOT


def parse_in_subprocess(env_overrides: dict[str, str]) -> str:
    """Parse the DAG folder in a fresh interpreter where any network connection raises."""
    script = textwrap.dedent(f"""
        import os, socket, json
        def refuse(*args, **kwargs):
            raise AssertionError(f"network access at DAG parse time: {{args}}")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        os.environ.update({env_overrides!r})
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(ROOT / 'dags')!r})
        print(json.dumps({{"errors": bag.import_errors, "dags": sorted(bag.dag_ids),
                           "files": sorted(os.path.basename(d.fileloc) for d in bag.dags.values()),
                           "timetables": {{d.dag_id: [type(d.timetable).__name__, repr(d.timetable)]
                                          for d in bag.dags.values()}}}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_one_dag_per_phase_without_io(tmp_path):
    import json

    # A state DB and store that would fail on first use: parsing must not use them.
    result = json.loads(parse_in_subprocess({
        "LECTERN_DB_URL": "postgresql+psycopg2://nobody@10.255.255.1:1/none",
        "LECTERN_STORE_URL": "s3://no-such-bucket/x",
        "LECTERN_HOME": str(tmp_path / "untouched"),
    }))
    assert result["errors"] == {}
    expected = sorted([f"lectern_{phase}" for phase in PHASES] + ["lectern_backfill_subject"])
    assert result["dags"] == expected
    assert result["files"] == [f"{dag_id}.py" for dag_id in expected]  # one file per phase
    assert not (tmp_path / "untouched").exists()


def test_kubernetes_mode_parses_too():
    import json

    result = json.loads(parse_in_subprocess({"LECTERN_EXECUTION": "kubernetes"}))
    assert result["errors"] == {} and len(result["dags"]) == len(PHASES) + 1


def test_backlog_cron_is_configurable():
    """Each phase runs on its upstream Asset, and on LECTERN_BACKLOG_CRON too unless it is empty."""
    import json

    default = json.loads(parse_in_subprocess({}))["timetables"]
    hourly = json.loads(parse_in_subprocess({"LECTERN_BACKLOG_CRON": "15 * * * *"}))["timetables"]
    asset_only = json.loads(parse_in_subprocess({"LECTERN_BACKLOG_CRON": ""}))["timetables"]
    for phase in PHASES[1:]:
        dag_id = f"lectern_{phase}"
        for upstream in (f"lectern_{name}" for name in upstream_phases(phase)):
            assert "0 */6 * * *" in default[dag_id][1] and upstream in default[dag_id][1], default[dag_id]
            kind, text = asset_only[dag_id]
            assert kind == "AssetTriggeredTimetable" and upstream in text and "*" not in text, asset_only[dag_id]
        assert "15 * * * *" in hourly[dag_id][1] and "0 */6" not in hourly[dag_id][1], hourly[dag_id]
    assert default["lectern_discover"][0] == asset_only["lectern_discover"][0] == "NullTimetable"


def test_dag_shape_and_trigger_form():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    for phase in PHASES[1:]:
        dag = bag.dags[f"lectern_{phase}"]
        assert dag.doc_md and dag.catchup is False and "lectern" in dag.tags
        assert {"subject", "video_ids", "batch_size", "force"} <= set(dag.params.keys())
        assert [t.task_id for t in dag.topological_sort()][:3] == ["claim_videos", "run_stage", "publish"]
        assert dag.get_task("run_stage").map_index_template
        expected_pool = {"download": "lectern_download", "transcribe": "lectern_gpu", "judge": "lectern_gpu",
                         "caption": "lectern_gpu"}
        assert dag.get_task("run_stage").pool == expected_pool.get(phase, "default_pool"), phase
        assert dag.get_task("run_stage").retries == (4 if phase == "download" else 2)
        assert "stale_only" in dag.params
        assert dag.get_task("publish").outlets[0].name == f"lectern_{phase}"
        assert all(f"lectern_{name}" in repr(dag.timetable) for name in upstream_phases(phase))
    # keyframes follows download (pairs) and judge (textbook): either Asset runs it, not both together
    condition = bag.dags["lectern_keyframes"].timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    assert sorted(asset.name for asset in condition.objects) == ["lectern_download", "lectern_judge"]
    assert "release" in bag.dags["lectern_assemble"].params
    segmenter = bag.dags["lectern_keyframes"].params.get_param("clip_segmenter")
    assert segmenter.value == "asr" and segmenter.schema["enum"] == ["asr", "scene"]
    assert "clip_segmenter" not in bag.dags["lectern_ocr"].params
    for dag in bag.dags.values():  # every trigger form field is typed, titled and explained
        for name in dag.params.keys():
            param = dag.params.get_param(name)
            assert param.schema.get("type") and param.schema.get("title") and param.description, (dag.dag_id, name)
    discover = bag.dags["lectern_discover"]
    assert type(discover.timetable).__name__ == "NullTimetable"  # triggered by people, not by time
    assert {"subject", "force"} <= set(discover.params.keys())


def test_stage_code_never_imports_airflow():
    offenders = [str(p) for p in (ROOT / "include" / "lectern").rglob("*.py")
                 if "import airflow" in p.read_text() or "from airflow" in p.read_text()]
    assert offenders == []


def test_backfill_drives_every_phase_dag_in_order():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["lectern_backfill_subject"]
    assert dag.doc_md and dag.max_active_runs == 1 and type(dag.timetable).__name__ == "NullTimetable"
    assert {"subject", "batch_size", "max_rounds", "round", "release"} <= set(dag.params.keys())
    order = [t.task_id for t in dag.topological_sort() if t.task_id != "release_drained"]
    assert order == ["start_round", *(f"run_{phase}" for phase in PHASES), "review_round", "continue_backfill",
                     "next_round"]
    assert dag.get_task("release_drained").upstream_task_ids == {"review_round"}  # a drained round releases
    for phase in PHASES:
        trigger = dag.get_task(f"run_{phase}")
        assert trigger.trigger_dag_id == f"lectern_{phase}" and trigger.wait_for_completion
        assert trigger.fail_when_dag_is_paused  # a paused phase DAG is an error, not an endless wait
    assert dag.get_task("next_round").trigger_dag_id == "lectern_backfill_subject"
