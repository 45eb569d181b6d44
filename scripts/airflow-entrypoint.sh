#!/usr/bin/env bash
# The Airflow images' entrypoint. Arguments are an Airflow subcommand (compose: `command: scheduler`) or a whole
# command line (the official Helm chart runs `bash -c "exec airflow scheduler"`), as in Airflow's own image.
set -euo pipefail
if [ $# -gt 0 ] && ! command -v "$1" >/dev/null 2>&1; then
  exec airflow "$@"
fi
exec "${@:-airflow}"
