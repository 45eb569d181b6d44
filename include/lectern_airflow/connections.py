"""The store's S3 client from an Airflow connection (LECTERN_S3_CONN_ID), in every process that loads Lectern's
Airflow wiring (the DAGs, the plugin): an aws connection's keys (login/password or its extra's) and its extra's
endpoint_url, through the Amazon provider. Stage processes without Airflow (pods) keep the AWS_* variables."""

from __future__ import annotations

from lectern.store import s3_client_config, use_connection_clients


def connection_client(conn_id: str, endpoint_url: str | None, region: str):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    session = hook.get_session(region_name=region)
    return session.client("s3", endpoint_url=hook.conn_config.endpoint_url or endpoint_url, region_name=region,
                          config=s3_client_config())


use_connection_clients(connection_client)
