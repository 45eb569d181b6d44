"""The subject backfill's tasks: each round triggers every phase DAG for the subject in turn and waits, then
reviews what is left: drained, another round (a new run of the backfill DAG), or stuck."""

from __future__ import annotations

from airflow.sdk import TriggerRule, task

from lectern.config import Settings
from lectern_airflow.assets import SETTINGS

BACKFILL_DAG_ID = "lectern_backfill_subject"


@task(multiple_outputs=True)
def start_round(**context) -> dict:
    """Rows already finished before this round (to tell progress), and each phase's trigger conf."""
    from lectern.backfill import round_confs, subject_backlog

    params = context["params"]
    state = subject_backlog(Settings.from_env(), params["subject"])
    print(f"backfill {params['subject']}, round {params['round']}: ready {state.ready or 'nothing'}, "
          f"in flight {state.waiting or 'nothing'}, {state.finished} rows finished", flush=True)
    return {"finished_before": state.finished, **round_confs(params["subject"], params["batch_size"])}


def trigger_phase(phase: str, conf):
    """Trigger one phase DAG for the subject and wait (deferred, on the triggerer) until that run ends."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    return TriggerDagRunOperator(
        task_id=f"run_{phase}", trigger_dag_id=f"lectern_{phase}", conf=conf, wait_for_completion=True,
        deferrable=True, poke_interval=SETTINGS.backfill_poll_seconds, fail_when_dag_is_paused=True,
        # a failed phase run does not stop the round: later phases still take what is ready for them
        trigger_rule=TriggerRule.ALL_DONE)


@task(task_id="review_round", trigger_rule=TriggerRule.ALL_DONE)
def review_backfill_round(finished_before: int, **context) -> dict:
    """Drained, another round, or stuck: a stuck backfill fails here, after saying what is stuck and why."""
    from airflow.sdk.exceptions import AirflowFailException

    from lectern.backfill import review_round

    params = context["params"]
    report = review_round(Settings.from_env(), params["subject"], finished_before, params["round"],
                          params["max_rounds"])
    if report["next"] == "stuck":
        raise AirflowFailException(f"backfill of {params['subject']} is stuck: ready {report['ready'] or 'nothing'}, "
                                   f"in flight {report['waiting'] or 'nothing'} (see the log above)")
    return report


@task.short_circuit
def continue_backfill(report: dict, **context) -> dict | None:
    """The next round's conf when there is more to do; nothing (skipping the trigger) when drained."""
    if report["next"] != "again":
        return None
    return {**context["params"], "round": report["round"] + 1}


def next_round(conf):
    """Continue as a new run of this DAG (it starts once this one ends: max_active_runs=1)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    return TriggerDagRunOperator(task_id="next_round", trigger_dag_id=BACKFILL_DAG_ID, conf=conf)
