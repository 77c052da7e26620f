import { describe, expect, it } from "vitest";
import { createRateLimiter } from "../../src/limits/token-bucket.ts";

function limiter(burstSeconds = 1) {
  let t = 0;
  const l = createRateLimiter({ burstSeconds, now: () => t });
  return { l, advance: (ms: number) => (t += ms) };
}

describe("token buckets", () => {
  it("grants a full bucket's worth, then says how long until the next token", () => {
    const { l, advance } = limiter();
    const draw = [{ key: "a", perSecond: 10, tokens: 1 }];
    for (let i = 0; i < 10; i++) expect(l.take(draw)).toBe(0);
    expect(l.take(draw)).toBe(100);
    advance(100);
    expect(l.take(draw)).toBe(0);
  });

  it("holds burstSeconds of the rate, never more however long it rests", () => {
    const { l, advance } = limiter(2);
    advance(60_000);
    expect(l.take([{ key: "a", perSecond: 5, tokens: 10 }])).toBe(0);
    expect(l.take([{ key: "a", perSecond: 5, tokens: 1 }])).toBe(200);
  });

  it("lets a draw larger than the bucket through when it is full, and charges the debt", () => {
    const { l, advance } = limiter();
    expect(l.take([{ key: "a", perSecond: 100, tokens: 500 }])).toBe(0);
    // 400 in debt plus one token: 4.01 s at 100/s.
    expect(l.take([{ key: "a", perSecond: 100, tokens: 1 }])).toBe(4010);
    advance(4010);
    expect(l.take([{ key: "a", perSecond: 100, tokens: 1 }])).toBe(0);
  });

  it("draws from all buckets or none", () => {
    const { l } = limiter();
    expect(l.take([{ key: "tenant", perSecond: 100, tokens: 100 }])).toBe(0);
    // The caller's bucket has room, the tenant's does not: the caller is not charged.
    expect(l.take([{ key: "caller", perSecond: 3, tokens: 3 }, { key: "tenant", perSecond: 100, tokens: 3 }])).toBeGreaterThan(0);
    expect(l.take([{ key: "caller", perSecond: 3, tokens: 3 }])).toBe(0);
  });

  it("treats a rate of 0 as unlimited and remembers no bucket for it", () => {
    const { l } = limiter();
    for (let i = 0; i < 1000; i++) expect(l.take([{ key: "free", perSecond: 0, tokens: 1000 }])).toBe(0);
    expect(l.size()).toBe(0);
  });

  it("forgets buckets that have refilled, so many callers do not grow memory without bound", () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 9_999; i++) l.take([{ key: `caller-${i}`, perSecond: 10, tokens: 1 }]);
    expect(l.size()).toBe(9_999);
    advance(1000);
    l.take([{ key: "last", perSecond: 10, tokens: 1 }]);
    expect(l.size()).toBe(1);
  });
});
