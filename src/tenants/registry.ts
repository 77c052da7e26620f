import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { alreadyExists, invalidArgument, notFound, unavailable } from "../errors.ts";
import { nowMicros } from "../time.ts";
import { NO_RATE_LIMITS, readTenants, writeTenant, type TenantRecord } from "./tenant-store.ts";

export const TENANT_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** What a create or update may set; the rest is the server's. */
export type TenantChanges = Partial<Pick<TenantRecord, "displayName" | "retentionDays" | "rateLimits" | "redaction">>;

/**
 * The tenants, cached in memory (every request consults them) and kept in
 * the `tenants` table. Changes made by this instance apply at once; those of
 * other instances on the same ClickHouse within `refreshMs`.
 */
export interface TenantRegistry {
  /** Reads the tenants; called once the schema is in place, before the service reports ready. */
  load(): Promise<void>;
  /** False until the first load: then nothing can be said about a tenant yet. */
  readonly loaded: boolean;
  get(id: string): TenantRecord | undefined;
  /** The tenant, created with the defaults first when auto-creation is on; undefined when unknown. */
  resolve(id: string): Promise<TenantRecord | undefined>;
  list(): TenantRecord[];
  create(id: string, changes: TenantChanges): Promise<TenantRecord>;
  update(id: string, changes: TenantChanges): Promise<TenantRecord>;
  /** Creates a tenant the service itself writes to (the admin audit tenant), if missing. */
  ensure(id: string, displayName: string): Promise<void>;
  close(): void;
}

export function createTenantRegistry(deps: {
  writer: ClickHouseClient;
  reader: ClickHouseClient;
  autoCreate: boolean;
  log: Logger;
  refreshMs?: number;
}): TenantRegistry {
  let tenants = new Map<string, TenantRecord>();
  let timer: NodeJS.Timeout | undefined;
  let loaded = false;
  // One insert per tenant, however many requests race to create it.
  const creating = new Map<string, Promise<TenantRecord>>();

  /** False when the table could not be read (the tenants known are kept). */
  const refresh = async (): Promise<boolean> => {
    try {
      const fresh = new Map((await readTenants(deps.reader)).map((t) => [t.id, t]));
      // Keep what this instance wrote meanwhile: the read may have started before it.
      for (const [id, t] of tenants) if ((fresh.get(id)?.updateTimeUs ?? -1) < t.updateTimeUs) fresh.set(id, t);
      tenants = fresh;
      return true;
    } catch (err) {
      deps.log.warn({ err }, "could not refresh the tenants; keeping the ones known");
      return false;
    }
  };

  async function store(t: TenantRecord): Promise<TenantRecord> {
    await writeTenant(deps.writer, t);
    tenants.set(t.id, t);
    return t;
  }

  function create(id: string, changes: TenantChanges): Promise<TenantRecord> {
    if (!TENANT_ID_PATTERN.test(id)) throw invalidArgument(`tenant_id ${JSON.stringify(id)} must be 1 to 64 letters, digits, ".", "_" or "-"`);
    if (tenants.has(id)) throw alreadyExists(`tenant "${id}" already exists; change it with UpdateTenant`);
    const pending = creating.get(id);
    if (pending) throw alreadyExists(`tenant "${id}" is being created`);
    const insert = store(newTenant(id, changes)).finally(() => creating.delete(id));
    creating.set(id, insert);
    return insert;
  }

  return {
    async load() {
      tenants = new Map((await readTenants(deps.reader)).map((t) => [t.id, t]));
      loaded = true;
      clearInterval(timer);
      timer = setInterval(() => void refresh(), deps.refreshMs ?? 5000);
      timer.unref();
    },
    get loaded() {
      return loaded;
    },
    get: (id) => tenants.get(id),
    async resolve(id) {
      const known = tenants.get(id);
      if (known) return known;
      // Its outcome, failure included: a caller told "unknown" for a failed lookup would drop its events for good.
      const pending = creating.get(id);
      if (pending) return pending;
      if (!deps.autoCreate || !TENANT_ID_PATTERN.test(id)) return undefined;
      // Another instance may have made it since the last refresh: the defaults
      // written now would be the newest version and replace its settings.
      const made = (async () => {
        if (!(await refresh())) throw unavailable(`tenant "${id}" could not be looked up to create it; retry shortly`);
        const found = tenants.get(id);
        if (found) return found;
        const record = await store(newTenant(id, {}));
        deps.log.info({ tenant: id }, "created a tenant on first use (AUDITLOG_AUTO_CREATE_TENANTS)");
        return record;
      })().finally(() => creating.delete(id));
      creating.set(id, made);
      return made;
    },
    list: () => [...tenants.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    create,
    async update(id, changes) {
      const current = tenants.get(id);
      if (!current) throw notFound(`tenant "${id}" does not exist`);
      // Strictly later than the version it replaces, or ReplacingMergeTree could keep either.
      return store({ ...current, ...changes, updateTimeUs: Math.max(nowMicros(), current.updateTimeUs + 1) });
    },
    async ensure(id, displayName) {
      if (!tenants.has(id)) await create(id, { displayName });
    },
    close: () => clearInterval(timer),
  };
}

function newTenant(id: string, changes: TenantChanges): TenantRecord {
  const now = nowMicros();
  return {
    id,
    displayName: changes.displayName ?? "",
    retentionDays: changes.retentionDays ?? 0,
    rateLimits: changes.rateLimits ?? { ...NO_RATE_LIMITS },
    redaction: changes.redaction ?? { keys: [] },
    createTimeUs: now,
    updateTimeUs: now,
  };
}
