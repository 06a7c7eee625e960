"""What ties govex together: settings, the metadata store, the `govex` CLI, and (later) the
exchange run, the web app and the Airflow integration."""
