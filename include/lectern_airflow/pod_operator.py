"""The KubernetesPodOperator of stage pods, with the stage exit-code contract the local executor keeps: exit 3
(not claimable) skips the task, exit 2 (permanent) fails it without a retry, exit 75 (transient) and anything else
fail it for Airflow to retry. Imported only in Kubernetes mode (the provider is heavy to import)."""

from __future__ import annotations

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from lectern.runner import EXIT_PERMANENT


def container_exit_code(pod, container: str) -> int | None:
    """The exit code of `container` in a finished pod (None while it has none)."""
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    status = next((s for s in statuses if s.name == container), None)
    terminated = status.state.terminated if status is not None and status.state else None
    return terminated.exit_code if terminated is not None else None


class StagePodOperator(KubernetesPodOperator):
    """A stage pod: `python -m lectern stage ...` for its videos."""

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None):
        # The provider raises one AirflowException for every failed pod, which Airflow retries; a permanent
        # failure must not cost retries (for transcribe: more GPU pod launches that fail the same way).
        try:
            super().cleanup(pod, remote_pod, xcom_result, context)
        except AirflowSkipException:
            raise
        except Exception as exc:
            if container_exit_code(remote_pod, self.base_container_name) == EXIT_PERMANENT:
                raise AirflowFailException(f"{exc}\nExit {EXIT_PERMANENT}: failed permanently (see the log above); "
                                           "not retried") from exc
            raise
