#!/usr/bin/env bash
# First start of an empty data directory only (docker-entrypoint-initdb.d): one login role and
# one database each for Airflow and for the govex metadata store, so neither can touch the
# other's tables and each can be moved to its own server later by changing one URL.
# Passwords come from the postgres service's environment (see docker-compose.yml); psql's
# :'var' quoting keeps them out of the SQL text.
set -e

if [ -z "${AIRFLOW_DB_PASSWORD:-}" ] || [ -z "${GOVEX_DB_PASSWORD:-}" ]; then
    echo "init-databases.sh: AIRFLOW_DB_PASSWORD and GOVEX_DB_PASSWORD must be set" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v airflow_password="$AIRFLOW_DB_PASSWORD" -v govex_password="$GOVEX_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';
CREATE ROLE govex LOGIN PASSWORD :'govex_password';
CREATE DATABASE govex OWNER govex ENCODING 'UTF8';
SQL
