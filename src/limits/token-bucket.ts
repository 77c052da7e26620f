/** One bucket to draw from: `perSecond` 0 means unlimited. */
export interface Draw {
  key: string;
  perSecond: number;
  tokens: number;
}

/**
 * Token buckets keyed by name, refilled continuously at their rate and
 * holding `burstSeconds` of it. A draw larger than a whole bucket (one big
 * batch) is let through when the bucket is full and leaves it in debt, so a
 * limit slows big requests down instead of refusing them forever.
 */
export function createRateLimiter(options: { burstSeconds: number; now?: () => number }) {
  const now = options.now ?? (() => performance.now());
  const buckets = new Map<string, { tokens: number; atMs: number }>();
  let draws = 0;

  const level = (draw: Draw, t: number) => {
    const capacity = draw.perSecond * options.burstSeconds;
    const bucket = buckets.get(draw.key);
    if (!bucket) return { capacity, tokens: capacity };
    return { capacity, tokens: Math.min(capacity, bucket.tokens + ((t - bucket.atMs) / 1000) * draw.perSecond) };
  };

  /** Forget buckets that have refilled: they are the same as new ones. */
  const sweep = (t: number, perSecondOf: (key: string) => number) => {
    for (const [key, bucket] of buckets) {
      const rate = perSecondOf(key);
      if (rate === 0 || bucket.tokens + ((t - bucket.atMs) / 1000) * rate >= rate * options.burstSeconds) buckets.delete(key);
    }
  };
  const rates = new Map<string, number>();

  return {
    /**
     * Draws from every bucket, or from none: 0 when granted, otherwise the
     * milliseconds after which the same draw would be granted.
     */
    take(wanted: Draw[]): number {
      const t = now();
      const limited = wanted.filter((d) => d.perSecond > 0 && d.tokens > 0);
      let waitMs = 0;
      const levels = limited.map((draw) => {
        const { capacity, tokens } = level(draw, t);
        const needed = Math.min(draw.tokens, capacity);
        if (tokens < needed) waitMs = Math.max(waitMs, ((needed - tokens) / draw.perSecond) * 1000);
        return tokens;
      });
      if (waitMs > 0) return Math.ceil(waitMs);
      limited.forEach((draw, i) => {
        buckets.set(draw.key, { tokens: levels[i] - draw.tokens, atMs: t });
        rates.set(draw.key, draw.perSecond);
      });
      if (++draws % 10_000 === 0) {
        sweep(t, (key) => rates.get(key) ?? 0);
        for (const key of rates.keys()) if (!buckets.has(key)) rates.delete(key);
      }
      return 0;
    },
    /** Buckets currently remembered (for tests of the memory bound). */
    size: () => buckets.size,
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
