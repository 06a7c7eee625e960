"""govex DAGs, built from the metadata store at GOVEX_DB_URL. A file named
govex__<department>.py holds that providing department's DAGs (`govex dags split` writes
them); any other file, those of every department without such a file beside it. Edit the
workspace and `govex apply`, not this file."""

from exchange.airflow import dags_for_file

globals().update(dags_for_file(__file__))
