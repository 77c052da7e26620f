import { describe, expect, it } from "vitest";
import { jsonBytesWriter } from "../../src/wire/json-bytes.ts";

/** The encodings of every event are written by this writer: its bytes must be JSON.stringify's, as UTF-8. */
describe("jsonBytesWriter", () => {
  const awkward = ["", "plain", 'quote " and \\ backslash', "controls \u0000\u0001\n\t\u001f and del \u007f", "ünïcödé 日本語 🎉", "\u2028\u2029", "lone \ud800 surrogate \udfff", "x".repeat(5000)];

  it("writes each string literal as JSON.stringify does, growing from a tiny buffer without losing what came before", () => {
    const w = jsonBytesWriter(4);
    const expected: string[] = [];
    for (const text of awkward) {
      w.jsonString(text);
      w.ascii(",");
      expected.push(JSON.stringify(text));
    }
    expect(w.take().toString("utf8")).toBe(`${expected.join(",")},`);
  });

  it("repeats bytes already written, copies bytes of another buffer, and starts over after take and clear", () => {
    const w = jsonBytesWriter(8);
    w.utf8("héllo");
    const end = w.at;
    w.ascii("|");
    w.again(0, end);
    w.bytesOf(Buffer.from("<abc>"), 1, 4);
    expect(w.written().toString()).toBe("héllo|hélloabc");
    expect(w.take().toString()).toBe("héllo|hélloabc");
    expect(w.at).toBe(0);
    w.ascii("next");
    w.clear();
    w.ascii("again");
    expect(w.take().toString()).toBe("again");
  });

  it("hands out buffers of their own, not slices of Node's shared pool (a queued event's weight is its bytes)", () => {
    const w = jsonBytesWriter();
    w.ascii("short");
    const taken = w.take();
    expect(taken.buffer.byteLength).toBe(taken.length);
  });
});
