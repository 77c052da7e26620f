#!/bin/bash
# Runs once, when the ClickHouse container initializes its data directory:
# creates the writer-only user from writer-user.sql with the password from
# AUDITLOG_WRITER_PASSWORD. The schema comes later, from the `migrate` service.
set -euo pipefail
escaped=${AUDITLOG_WRITER_PASSWORD//\'/\\\'}
sed "s/'CHANGE-ME'/'${escaped}'/" /auditlog/writer-user.sql \
  | clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery
