import { toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EventFilterSchema } from "../../gen/auditlog/v1/event_pb.js";
import { filterFromParams, parseRfc3339 } from "../../src/http/filter-params.ts";

const parse = (query: string, own: string[] = ["format"]) => toJson(EventFilterSchema, filterFromParams(new URLSearchParams(query), own));

describe("URL query parameters → EventFilter (export and WebSocket routes)", () => {
  it("maps every field, repeats meaning OR", () => {
    expect(
      parse(
        "format=csv&type=a.b&type=c&action=view&outcome=failure&outcome=OUTCOME_SUCCESS&min_severity=warning&actor_id=u1&resource_type=account" +
          "&resource_id=r1&resource_id=r2&source=api&request_id=rq&text=card%20declined&tenant_id=acme&attr.plan=pro&attr.region=eu" +
          "&start_time=2026-11-01T00:00:00Z&end_time=2026-11-02T01:02:03.5%2B01:00&q=attr.amount:%3E100",
      ),
    ).toEqual({
      types: ["a.b", "c"],
      actions: ["view"],
      outcomes: ["OUTCOME_FAILURE", "OUTCOME_SUCCESS"],
      minSeverity: "SEVERITY_WARNING",
      actorIds: ["u1"],
      resourceType: "account",
      resourceIds: ["r1", "r2"],
      sources: ["api"],
      requestId: "rq",
      text: "card declined",
      tenantId: "acme",
      attributes: { plan: "pro", region: "eu" },
      startTime: "2026-11-01T00:00:00Z",
      endTime: "2026-11-02T00:02:03.500Z",
      query: "attr.amount:>100",
    });
  });

  it("an empty query is an empty filter", () => {
    expect(parse("")).toEqual({});
  });

  it.each([
    ["query=type:x", 'unknown query parameter "query"; this route takes format, type, action'],
    ["q=type:x&q=action:y", "q may be given once"],
    ["attr.=x", 'unknown query parameter "attr."'],
    // Names every object inherits are not parameters.
    ["constructor=x", 'unknown query parameter "constructor"'],
    ["toString=x", 'unknown query parameter "toString"'],
    ["__proto__=x", 'unknown query parameter "__proto__"'],
    ["text=a&text=b", "text may be given once"],
    ["attr.k=1&attr.k=2", "attr.k may be given once"],
    ["outcome=UNSPECIFIED", 'outcome must be one of SUCCESS, FAILURE, got "UNSPECIFIED"'],
    ["min_severity=LOUD", 'min_severity must be one of INFO, WARNING, ERROR, CRITICAL, got "LOUD"'],
    ["start_time=2026-11-01", "start_time must be an RFC 3339 time such as 2026-11-23T10:00:00Z"],
    ["end_time=2026-13-45T00:00:00Z", "end_time must be an RFC 3339 time"],
  ])("%s → %s", (query, message) => {
    expect(() => parse(query)).toThrow(message);
  });

  it("keeps nanoseconds and offsets", () => {
    const ts = parseRfc3339("t", "1970-01-01T01:00:00.000000001+01:00");
    expect([ts.seconds, ts.nanos]).toEqual([0n, 1]);
  });
});
