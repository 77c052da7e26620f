/**
 * How far an event's `time` may be ahead of its `received_at`, at most. The
 * events table is partitioned by weeks of `received_at`, and reads use this
 * bound to open only the weeks that can hold what they look for: an event
 * received before R has a time before R + this.
 *
 * It holds because validation refuses a time more than 5 minutes ahead of
 * the server clock (src/ingest/rules.ts), and the committer never stamps a
 * batch earlier than its newest time minus this (which matters only if the
 * clock stepped back between the two). The hour beyond the 5 minutes covers
 * stores written before the committer kept the bound.
 */
export const TIME_LEAD_OVER_RECEIPT_US = 60 * 60 * 1_000_000;
