"""The demo city (`govex demo`): a seeded generator of realistic source data with planted
defects (`city`), the driver that runs its exchanges through Airflow (`airflow_driver`), and
the embedded Kafka-protocol broker for development and tests (`broker`, `govex broker`).

The demo city's workspace is package data (`workspace/`), so the demo runs from a wheel.
"""
