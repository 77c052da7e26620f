-- A read-only account for analysts on a ClickHouse server, limited to one
-- tenant by row policies: it can run any SELECT on the audit tables and
-- rollups, and sees only rows of tenant 'acme'. Nothing it runs can change
-- data. Create one per tenant (or use a role per tenant), as a ClickHouse admin:
--
--   clickhouse-client --user admin < analyst-user.sql   (replace the password and tenant first)
--
-- The database is `auditlog`; change it throughout if yours differs.

-- OR REPLACE throughout: run again (another password, another tenant), the
-- file never leaves an old password or an old policy in place. Policy names
-- carry the user: a copy made for another user by changing 'acme' and the
-- user name gets policies of its own, never none (a user without a row
-- policy reads every tenant's rows).

CREATE USER OR REPLACE analyst_acme IDENTIFIED WITH sha256_password BY 'CHANGE-ME'
  SETTINGS readonly = 1, max_execution_time = 60, max_memory_usage = 4000000000;
GRANT SELECT ON auditlog.events TO analyst_acme;
GRANT SELECT ON auditlog.events_hourly TO analyst_acme;
GRANT SELECT ON auditlog.event_types TO analyst_acme;
GRANT SELECT ON auditlog.checkpoints TO analyst_acme;

-- Row policies: this user sees only the tenant's rows; users without a policy
-- on these tables (the service itself) keep seeing every row.
CREATE ROW POLICY OR REPLACE analyst_acme_events ON auditlog.events FOR SELECT USING tenant_id = 'acme' TO analyst_acme;
CREATE ROW POLICY OR REPLACE analyst_acme_events_hourly ON auditlog.events_hourly FOR SELECT USING tenant_id = 'acme' TO analyst_acme;
CREATE ROW POLICY OR REPLACE analyst_acme_event_types ON auditlog.event_types FOR SELECT USING tenant_id = 'acme' TO analyst_acme;
CREATE ROW POLICY OR REPLACE analyst_acme_checkpoints ON auditlog.checkpoints FOR SELECT USING tenant_id = 'acme' TO analyst_acme;
