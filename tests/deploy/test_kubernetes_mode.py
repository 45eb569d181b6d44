"""Kubernetes mode against an emulated cluster (tests/deploy/cluster.py: kmock's API emulator and a fake kubelet
that runs each pod's command as a local process): phase DAG runs through dag.test() with LECTERN_EXECUTION=kubernetes,
their stage pods created, watched (deferred), logged and deleted by the real KubernetesPodOperator, and the stage
exit codes kept: success, not claimable -> skipped, transient -> retried, permanent -> failed without a retry."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from lectern.config import Settings
from lectern.state.db import session_scope
from lectern.state.reports import stage_rows
from lectern.state.transitions import forget_video
from tests.conftest import ROOT, model_environment
from tests.dags.test_pod_specs import reload_wiring
from tests.deploy.cluster import EmulatedCluster
from tests.integration.test_pipeline_airflow import run_dag
from tests.unit.test_runner import discover

pytestmark = pytest.mark.integration
TAKEN_DOWN = "taken_down"  # a video forgotten while its pod was being scheduled


def take_down_racing_pods(pod: dict) -> None:
    """The kubelet's hook before a pod starts: a takedown of one video lands while its pod is scheduled."""
    if TAKEN_DOWN in pod["metadata"].get("annotations", {}).get("lectern/video-ids", ""):
        with session_scope(os.environ["LECTERN_DB_URL"]) as session:
            forget_video(session, TAKEN_DOWN, "takedown while scheduled", force=True)


@pytest.fixture(scope="module")
def kubernetes_mode(tmp_path_factory, pg_server, corpus_server, tiny_models, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import create_pg_database, drop_pg_database

    home = tmp_path_factory.mktemp("k8s-home")
    db_name, db_url = create_pg_database()
    env = {"LECTERN_HOME": str(home), "LECTERN_DB_URL": db_url, "LECTERN_STORE_URL": f"file://{home}/store",
           "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8", "LECTERN_MAX_ATTEMPTS": "2",
           "LECTERN_RETRY_BACKOFF_SECONDS": "1", **model_environment(tiny_models),
           "LECTERN_METADATA_MIN_RELEVANCE": "0", "LECTERN_METADATA_JUDGE_MODEL": ""}  # no discover phase scores them
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        # the emulated node has no GPU: its kubelet runs GPU pods with the models on the CPU
        with EmulatedCluster(home, before_start=take_down_racing_pods,
                             node_env={"LECTERN_ASR_DEVICE": "cpu", "LECTERN_LLM_DEVICE": "cpu"}) as cluster:
            apply_stage_pod_manifests(cluster, env)
            patch.setenv("LECTERN_EXECUTION", "kubernetes")
            patch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
                "conn_type": "kubernetes", "extra": {"kube_config_path": str(cluster.kubeconfig), "in_cluster": False,
                                                     "namespace": "lectern"}}))
            reload_wiring()
            try:
                yield {"cluster": cluster, "bag": DagBag(dag_folder=str(ROOT / "dags")),
                       "settings": Settings.from_env(), "corpus": corpus_server.base_url}
            finally:
                patch.delenv("LECTERN_EXECUTION")
                reload_wiring()
    drop_pg_database(db_name)


def apply_stage_pod_manifests(cluster: EmulatedCluster, env: dict[str, str]) -> None:
    """deploy/k8s as an operator applies it: the pods' Secret (its keys this test's settings), the model cache's
    claim, the Role and its binding. Not the Namespace: kmock cannot create a cluster-scoped object
    (POST /api/v1/namespaces); test_manifests.py validates it."""
    for name in ("secret.example.yaml", "model-cache-pvc.yaml", "rbac.yaml"):
        for manifest in yaml.safe_load_all((ROOT / "deploy" / "k8s" / name).read_text()):
            if manifest["kind"] == "Secret":
                manifest["stringData"] = env
            cluster.apply(manifest)


def task_instances(run, task_id: str = "run_stage") -> dict[str, tuple[str, int]]:
    """The mapped task instances of a run: video ids (their label) -> (state, try number)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id, TaskInstance.task_id == task_id)
        return {ti.rendered_map_index: (ti.state, ti.try_number) for ti in tis}


def test_a_download_phase_in_pods_keeps_every_exit_code(kubernetes_mode, capfd):
    cluster, bag, corpus = kubernetes_mode["cluster"], kubernetes_mode["bag"], kubernetes_mode["corpus"]
    settings = kubernetes_mode["settings"]
    discover(settings.db_url, ("photosynthesis", f"{corpus}/photosynthesis.mp4"),  # succeeds
             ("gone", f"{corpus}/gone.mp4"),  # 404: permanent
             ("unreachable", "http://127.0.0.1:9/v.mp4"),  # refused: transient, until its last attempt
             (TAKEN_DOWN, f"{corpus}/cell_division.mp4"))  # forgotten before its pod starts: not claimable
    run, _ = run_dag(bag, "download", {})
    states = task_instances(run)
    assert states["photosynthesis"] == ("success", 1)
    assert states["gone"] == ("failed", 1)  # exit 2: no retry, though the task has 4
    assert states["unreachable"] == ("failed", 2)  # exit 75 retried; its second attempt is its last: exit 2
    assert states[TAKEN_DOWN] == ("skipped", 1)  # exit 3
    codes = {cluster.created[key]["metadata"]["annotations"]["lectern/video-ids"]: code
             for key, code in cluster.exit_codes.items()}
    assert codes == {"photosynthesis": 0, "gone": 2, "unreachable": 2, TAKEN_DOWN: 3}
    assert sum(1 for pod in cluster.created.values()
               if pod["metadata"]["annotations"]["lectern/video-ids"] == "unreachable") == 2  # one pod per try
    remaining = {pod["metadata"]["annotations"]["lectern/video-ids"] for pod in cluster.pods().values()}
    assert "photosynthesis" not in remaining and "gone" in remaining  # deleted on success, kept for a look
    output = capfd.readouterr().out
    assert "[photosynthesis] download: succeeded" in output  # the pod's own log, in the task's log
    with session_scope(settings.db_url) as session:
        rows = {row.video_id: row for row in stage_rows(session, stage="download")}
    assert rows["photosynthesis"].status == "succeeded" and rows["photosynthesis"].run_id == run.run_id
    assert (rows["gone"].error_class, rows["unreachable"].error_kind) == ("VideoUnavailable", "permanent")


def test_a_transcribe_pod_requests_its_gpu_and_runs_whisper(kubernetes_mode):
    cluster, bag, settings = kubernetes_mode["cluster"], kubernetes_mode["bag"], kubernetes_mode["settings"]
    run, _ = run_dag(bag, "transcribe", {})
    assert task_instances(run) == {"photosynthesis": ("success", 1)}
    pod = next(p for p in cluster.created.values() if p["metadata"]["labels"].get("lectern/phase") == "transcribe")
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])
    assert pod["spec"]["runtimeClassName"] == "nvidia"  # from the GPU pod template
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LECTERN_ASR_DEVICE"] == "cuda"  # what a GPU node would run it on
    with session_scope(settings.db_url) as session:
        row = next(r for r in stage_rows(session, stage="transcribe"))
    assert (row.video_id, row.status) == ("photosynthesis", "succeeded")


def test_every_pod_the_operator_made_is_valid_for_the_kubernetes_api(kubernetes_mode):
    """The pods of the phases above, as the KubernetesPodOperator sent them (the schema, strict), each with its
    Secret from deploy/k8s found by the kubelet (it started them)."""
    import kubernetes_validate

    cluster = kubernetes_mode["cluster"]
    assert cluster.created and len(cluster.exit_codes) == len(cluster.created)  # every pod started and ended
    for pod in cluster.created.values():
        kubernetes_validate.validate({key: value for key, value in pod.items() if key != "status"}, "1.33",
                                     strict=True)
        assert pod["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "lectern-env"}}]
