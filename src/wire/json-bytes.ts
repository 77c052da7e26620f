/**
 * Writes JSON text straight as UTF-8 bytes into a buffer it reuses, then
 * hands out an exact copy (`take`). For encodings made for every event:
 * building them as strings made about 3 KB of garbage an event (template
 * literals' ropes, their flattening, JSON.stringify's pieces), which at
 * full load kept V8's scavenger busy (bench/RESULTS.md, "Ingest: fewer
 * bytes per event"). Strings of printable ASCII with nothing to escape, the
 * common case, are copied byte by byte in JavaScript: shorter than the
 * native call a Buffer write is for the short values of an event.
 */
export interface JsonBytesWriter {
  /** Where the next byte goes: marks for `again`. */
  readonly at: number;
  /** Text known to be ASCII (digits, punctuation, names), as it is. */
  ascii(text: string): void;
  /** Any text, as it is (its UTF-8). */
  utf8(text: string): void;
  /** A JSON string literal, exactly as JSON.stringify writes it. */
  jsonString(text: string): void;
  /** The bytes written from `from` to `to`, once more. */
  again(from: number, to: number): void;
  /** Bytes from another buffer, as they are. */
  bytesOf(source: Buffer, from: number, to: number): void;
  /** The bytes written since the last take or clear, in a buffer of their own (not a slice of a shared pool); starts over. */
  take(): Buffer;
  /** The bytes written since the last take or clear, in place: valid until the next write. */
  written(): Buffer;
  /** Starts over. */
  clear(): void;
}

export function jsonBytesWriter(initialBytes = 16 * 1024): JsonBytesWriter {
  let bytes = Buffer.allocUnsafe(initialBytes);
  let at = 0;

  function room(more: number): void {
    if (at + more <= bytes.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * bytes.length, at + more));
    bytes.copy(bigger, 0, 0, at);
    bytes = bigger;
  }

  const writer: JsonBytesWriter = {
    get at() {
      return at;
    },
    ascii(text) {
      const n = text.length;
      room(n);
      for (let i = 0; i < n; i++) bytes[at + i] = text.charCodeAt(i);
      at += n;
    },
    utf8(text) {
      room(Buffer.byteLength(text));
      at += bytes.write(text, at, "utf8");
    },
    jsonString(text) {
      const n = text.length;
      room(n + 2);
      let p = at;
      bytes[p++] = 0x22;
      for (let i = 0; i < n; i++) {
        const c = text.charCodeAt(i);
        // Escaped by JSON (", \, controls), or more than one byte: the native way.
        if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return writer.utf8(JSON.stringify(text));
        bytes[p++] = c;
      }
      bytes[p++] = 0x22;
      at = p;
    },
    again(from, to) {
      room(to - from);
      bytes.copyWithin(at, from, to);
      at += to - from;
    },
    bytesOf(source, from, to) {
      room(to - from);
      at += source.copy(bytes, at, from, to);
    },
    written() {
      return bytes.subarray(0, at);
    },
    clear() {
      at = 0;
      // One huge value does not keep its scratch space forever.
      if (bytes.length > 16 * initialBytes) bytes = Buffer.allocUnsafe(initialBytes);
    },
    take() {
      // Memory of its own: a slice of Node's shared pool would keep the
      // whole 8 KB slab alive, others' bytes too, for as long as it is held.
      const out = Buffer.allocUnsafeSlow(at);
      bytes.copy(out, 0, 0, at);
      writer.clear();
      return out;
    },
  };
  return writer;
}
