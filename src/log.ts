import { pino, type Logger } from "pino";

/** Log lines held while stdout is not being read; beyond it, lines are dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * Structured JSON logs on stdout, one line per event.
 *
 * Asynchronous on purpose: pino's default synchronous stdout spins forever on
 * EAGAIN when nobody reads the other end (a stalled log collector, a dead
 * parent), which would freeze the service — ingest included — and make it
 * ignore SIGTERM. Here a stalled reader costs log lines, never availability.
 */
export function createLogger(level: string): { log: Logger; flush(timeoutMs: number): Promise<void> } {
  let exiting = false;
  const destination = pino.destination({
    dest: 1,
    sync: false,
    minLength: 0,
    maxLength: MAX_BUFFERED_BYTES,
    // Retry a full pipe while running (on a timer, not a spin); once exiting,
    // give up, or pino's exit hook would spin on it forever.
    retryEAGAIN: () => !exiting,
  });
  // EPIPE and friends: the reader is gone; keep serving.
  destination.on("error", () => {});
  const log = pino({ level, base: { service: "auditlog" } }, destination);
  return {
    log,
    /**
     * Best effort before exit: writes what is buffered and closes the stream,
     * at most `timeoutMs`. A closed stream is skipped by pino's exit hook,
     * whose flushSync() would loop forever on EPIPE (stdout's reader gone).
     */
    flush: (timeoutMs) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          exiting = true;
          destination.destroy(); // idempotent
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        destination.once("close", done);
        destination.once("error", done);
        destination.end();
      }),
  };
}

/** A URL as logs may show it: `user:password@` in CLICKHOUSE_URL is left out. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "(not a URL)";
  }
}
