"""Kubernetes mode: pod specs rendered without a cluster (build_pod_request_obj(dry_run=True))."""

import importlib
import os

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def kubernetes_dags():
    import lectern_airflow
    from airflow.dag_processing.dagbag import DagBag

    previous = os.environ.get("LECTERN_EXECUTION")
    os.environ.update({"LECTERN_EXECUTION": "kubernetes", "LECTERN_WORKER_IMAGE": "registry.local/lectern-worker:1",
                       "LECTERN_GPU_NODE_SELECTOR": '{"nvidia.com/gpu.product": "H200"}',
                       "LECTERN_K8S_MODEL_CACHE_PVC": "lectern-models", "LECTERN_GPU_POD_MEMORY": "48Gi"})
    importlib.reload(lectern_airflow)
    try:
        yield DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        os.environ.pop("LECTERN_WORKER_IMAGE")
        os.environ.pop("LECTERN_GPU_NODE_SELECTOR")
        os.environ.pop("LECTERN_K8S_MODEL_CACHE_PVC")
        os.environ.pop("LECTERN_GPU_POD_MEMORY")
        if previous is None:
            os.environ.pop("LECTERN_EXECUTION")
        else:
            os.environ["LECTERN_EXECUTION"] = previous
        importlib.reload(lectern_airflow)


def render(bag, phase, video_id):
    import lectern_airflow

    mapped = bag.dags[f"lectern_{phase}"].get_task("run_stage")
    group = video_id if isinstance(video_id, list) else [video_id]
    operator = mapped.unmap(lectern_airflow.pod_call(phase)(group))
    return operator, operator.build_pod_request_obj(dry_run=True)


@pytest.mark.parametrize("phase", ["transcribe", "judge"])
def test_gpu_phases_request_a_gpu(kubernetes_dags, phase):
    operator, pod = render(kubernetes_dags, phase, "-0Vd8W3zB1M")
    container = pod.spec.containers[0]
    assert container.image == "registry.local/lectern-worker:1"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.resources.requests["memory"] == "48Gi"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "lectern-models"
    assert container.volume_mounts[0].mount_path == "/models"
    assert {e.name: e.value for e in container.env}["HF_HOME"] == "/models/hf"
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.spec.tolerations)
    assert pod.spec.node_selector == {"nvidia.com/gpu.product": "H200"}
    assert container.command == ["python", "-m", "lectern"]
    assert container.args[:3] == ["stage", phase, "--lease-owner"]
    assert container.args[4:] == ["--video-id", "-0Vd8W3zB1M"]
    assert pod.metadata.labels["lectern/video-id"] == "v-0Vd8W3zB1M"  # a valid label value
    assert pod.metadata.annotations["lectern/video-ids"] == "-0Vd8W3zB1M"  # the exact id
    assert pod.metadata.labels["lectern/phase"] == phase
    assert container.env_from[0].secret_ref.name == "lectern-env"
    assert operator.map_index_template == "{{ task.arguments[5:] | join(', ') }}"


def test_map_index_label_lists_every_video_of_a_pod(kubernetes_dags):
    from jinja2 import Template

    operator, pod = render(kubernetes_dags, "transcribe", ["a1", "b2", "c3"])
    assert pod.spec.containers[0].args[5:] == ["a1", "b2", "c3"]
    assert Template(operator.map_index_template).render(task=operator) == "a1, b2, c3"
    assert "lectern/video-id" not in pod.metadata.labels  # a label would name only one of them
    assert pod.metadata.annotations["lectern/video-ids"] == "a1,b2,c3"


@pytest.mark.parametrize("phase", ["download", "keyframes", "ocr", "assemble"])
def test_cpu_phases_do_not(kubernetes_dags, phase):
    _, pod = render(kubernetes_dags, phase, "abc123")
    container = pod.spec.containers[0]
    assert "nvidia.com/gpu" not in (container.resources.limits or {})
    assert not pod.spec.tolerations
    assert container.args[-2:] == ["--video-id", "abc123"] and pod.metadata.labels["lectern/video-id"] == "abc123"
