"""One Airflow DAG per govex catalog resource (`govex__<RESOURCE_CODE>`), built from the
metadata store at GOVEX_DB_URL. Edit the workspace and `govex apply`, not this file."""

from exchange.airflow import build_dags

globals().update(build_dags())
