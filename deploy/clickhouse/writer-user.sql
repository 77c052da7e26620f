-- The account the service writes with on a ClickHouse server: it may add
-- events and read them back, and nothing else. No ALTER (no UPDATE, no DELETE,
-- no TTL change), no TRUNCATE, no DROP, no OPTIMIZE: history can only grow.
-- The schema is created by an admin (`auditlog migrate` with admin
-- credentials); run the service with AUDITLOG_MIGRATE=false.
--
--   clickhouse-client --user admin < writer-user.sql   (replace the password below first)
--
-- The database is `auditlog`; change it throughout if yours differs.

CREATE USER IF NOT EXISTS auditlog_writer IDENTIFIED WITH sha256_password BY 'CHANGE-ME';
REVOKE ALL ON *.* FROM auditlog_writer;
GRANT SELECT, INSERT ON auditlog.events TO auditlog_writer;
-- Filled by materialized views in the same INSERT as the events.
GRANT SELECT, INSERT ON auditlog.event_ids TO auditlog_writer;
GRANT SELECT, INSERT ON auditlog.checkpoints TO auditlog_writer;
GRANT SELECT, INSERT ON auditlog.events_hourly TO auditlog_writer;
GRANT SELECT, INSERT ON auditlog.event_types TO auditlog_writer;
-- Tenants and their policies: a change is a new row (TenantService, admins only).
GRANT SELECT, INSERT ON auditlog.tenants TO auditlog_writer;
-- What the service reads about its own tables: parts per table (/metrics) and
-- the events table's partition key (searches read recent weeks first). Servers
-- with select_from_system_db_requires_grant need these said.
GRANT SELECT ON system.parts TO auditlog_writer;
GRANT SELECT ON system.tables TO auditlog_writer;
