"""Reading from and writing to department systems: SQL databases, files, Kafka."""
