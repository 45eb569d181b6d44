"""deploy/k8s, what stage pods need besides Airflow: every object valid for the Kubernetes API (its schemas, strict:
an unknown field fails), named as Lectern's defaults name them, the Role granting what the KubernetesPodOperator
does. test_kubernetes_mode.py applies them to the emulated cluster and runs its phases' pods with them."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from lectern.config import VARIABLES, Settings
from tests.conftest import ROOT

KUBERNETES = "1.33"
MANIFESTS = ROOT / "deploy" / "k8s"


def manifests() -> list[tuple[str, dict]]:
    return [(path.name, document) for path in sorted(MANIFESTS.glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.mark.parametrize("name, manifest", manifests(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_object_is_valid_for_the_kubernetes_api(name, manifest):
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_schema_check_fails_on_a_misspelt_field():
    claim = next(manifest for _, manifest in manifests() if manifest["kind"] == "PersistentVolumeClaim")
    claim = {**claim, "spec": {**claim["spec"], "accesModes": claim["spec"]["accessModes"]}}
    with pytest.raises(kubernetes_validate.ValidationError, match="accesModes"):
        kubernetes_validate.validate(claim, KUBERNETES, strict=True)


def test_the_objects_are_the_ones_lectern_names():
    settings = Settings.from_env({})
    by_kind = {manifest["kind"]: manifest for _, manifest in manifests()}
    assert by_kind["Namespace"]["metadata"]["name"] == settings.k8s_namespace
    for kind in ("Secret", "PersistentVolumeClaim", "Role", "RoleBinding", "Deployment", "Service"):
        assert by_kind[kind]["metadata"]["namespace"] == settings.k8s_namespace, kind
    assert by_kind["Secret"]["metadata"]["name"] == settings.k8s_env_secret
    secret_keys = set(by_kind["Secret"]["stringData"])
    assert {"LECTERN_DB_URL", "LECTERN_STORE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secret_keys
    assert secret_keys <= set(VARIABLES) | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert "ReadWriteMany" in by_kind["PersistentVolumeClaim"]["spec"]["accessModes"]  # pods on several nodes
    vllm = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert vllm["volumes"][0]["persistentVolumeClaim"]["claimName"] == by_kind["PersistentVolumeClaim"]["metadata"][
        "name"]


def test_the_role_grants_what_the_pod_operator_does():
    """Create, watch, read the log of and delete a pod; read its events when it fails to start."""
    role = next(manifest for _, manifest in manifests() if manifest["kind"] == "Role")
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("pods", verb) for verb in ("create", "get", "list", "watch", "delete", "patch")} | {
        ("pods/log", "get"), ("events", "list")}
    assert needed <= granted
    binding = next(manifest for _, manifest in manifests() if manifest["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_the_helm_values_wire_lectern_into_the_official_chart():
    """deploy/helm/values.yaml against what Lectern and deploy/k8s name (the chart itself is not rendered here: its
    source is not reachable from this machine, docs/status.md)."""
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    settings = Settings.from_env({})
    by_kind = {manifest["kind"]: manifest for _, manifest in manifests()}
    assert values["executor"] in ("CeleryExecutor", "KubernetesExecutor")
    assert values["triggerer"]["enabled"] and values["statsd"]["enabled"]  # deferred pods; Airflow's metrics
    sources = yaml.safe_load(values["extraEnvFrom"])
    assert {"secretRef": {"name": settings.k8s_env_secret}} in sources
    env = {item["name"]: item["value"] for item in values["env"]}
    assert set(env) <= set(VARIABLES)
    assert env["LECTERN_EXECUTION"] == "kubernetes"
    assert env["LECTERN_K8S_NAMESPACE"] == by_kind["Namespace"]["metadata"]["name"]
    assert env["LECTERN_K8S_MODEL_CACHE_PVC"] == by_kind["PersistentVolumeClaim"]["metadata"]["name"]
    logging = values["config"]["logging"]
    assert logging["remote_logging"] == "True" and logging["remote_log_conn_id"] == env["LECTERN_S3_CONN_ID"]
    assert logging["remote_base_log_folder"].startswith("s3://")
    migrate = " ".join(values["migrateDatabaseJob"]["args"])  # the pools, at install and each upgrade
    assert "lectern pools" in migrate and "airflow pools import" in migrate and "airflow db migrate" in migrate
    assert values["images"]["airflow"]["repository"] == values["defaultAirflowRepository"]
    # the Role's binding names the chart's service accounts of the release and namespace the header installs
    install = next(line for line in (ROOT / "deploy" / "helm" / "values.yaml").read_text().splitlines()
                   if "helm install" in line).split()
    release, namespace = install[install.index("install") + 1], install[install.index("-n") + 1]
    subjects = {(s["name"], s["namespace"]) for s in by_kind["RoleBinding"]["subjects"]}
    assert subjects == {(f"{release}-{component}", namespace) for component in ("worker", "triggerer", "scheduler")}
