"""The demo city (`govex demo`): its workspace, shipped as package data (`workspace/`, found and
copied to a working directory by `files`), a seeded generator of realistic source data with
planted defects (`city`), the run of every exchange end to end (`driver.run_demo`), which runs
the DAGs through Airflow with `airflow_driver`, and the embedded Kafka-protocol broker for
development and tests (`broker`, `govex broker`).

The demo never writes into the package: it runs in a copy of the workspace, so it runs from a
wheel.
"""
