import type { EventRecord } from "../store/event-row.ts";
import type { Conditions } from "./filter-sql.ts";

/**
 * What a full-text term (`EventFilter.text`, a bare word or "a phrase" of the
 * query language) means, once, for SQL and for the live tail.
 *
 * Words are runs of ASCII letters and digits and of any non-ASCII characters
 * (ClickHouse's `splitByNonAlpha`, the tokenizer of the text indexes on
 * `message` and on the attribute values), compared lower-cased (lowerUTF8 in
 * SQL, toLowerCase here: they differ only for a few special letters).
 * - A term that is one word matches events whose message or one of whose
 *   attribute values has that word: `declined` finds "Card DECLINED." but not
 *   "undeclined". Served from the text indexes alone.
 * - A term with more than a word in it (`"card declined"`, `u-42`, `a@b.com`)
 *   must appear as written, ignoring case, in the message or in one attribute
 *   value; the indexes narrow the candidates to events holding all its words.
 * - A term without any word (`"@"`) is a plain substring scan.
 */
const SEPARATOR = /[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/;
const SEPARATORS = new RegExp(`${SEPARATOR.source}+`);

type TermShape = "word" | "phrase" | "no-words";

function shapeOf(term: string): TermShape {
  if (!SEPARATOR.test(term)) return "word";
  return wordsOf(term).length > 0 ? "phrase" : "no-words";
}

/** The lower-cased words of a text, as the text indexes store them. */
export function wordsOf(text: string): string[] {
  return text.toLowerCase().split(SEPARATORS).filter((w) => w !== "");
}

// These two expressions are the ones the text indexes are built on (schema.ts).
const messageWords = "lowerUTF8(message)";
const valueWords = "arrayMap(v -> lowerUTF8(v), mapValues(attributes))";

/** The term as a SQL condition; its text travels as one query parameter. */
export function textTermSql(term: string, where: Conditions): string {
  const value = where.param("String", term);
  const words = `lowerUTF8(${value})`;
  const inMessage = `positionCaseInsensitiveUTF8(message, ${value}) > 0`;
  const inAValue = `arrayExists(v -> positionCaseInsensitiveUTF8(v, ${value}) > 0, mapValues(attributes))`;
  switch (shapeOf(term)) {
    case "word":
      return `(hasAllTokens(${messageWords}, ${words}) OR hasAllTokens(${valueWords}, ${words}))`;
    case "phrase":
      return `((hasAllTokens(${messageWords}, ${words}) AND ${inMessage}) OR (hasAllTokens(${valueWords}, ${words}) AND ${inAValue}))`;
    case "no-words":
      return `(${inMessage} OR ${inAValue})`;
  }
}

/**
 * `attributes[key] = value` (an attribute set to "" is not a missing one).
 * When the value has words, the attribute-value text index first narrows the
 * events to those holding all of them, which is necessary for equality: a
 * lookup of a rare value (an order id, an e-mail) then reads the few granules
 * that have it instead of every attribute of the tenant. A value made only of
 * common words costs a little more this way (README, "Full-text search").
 * Only the value's all-ASCII words are looked up, lower-cased here: exact
 * equality must not depend on the engine lower-casing other letters the same
 * way when it built an index as when it is asked (a change of its Unicode
 * tables between versions), and fewer words are still necessary.
 */
export function attributeEqualsSql(key: string, value: string, where: Conditions): string {
  const k = where.param("String", key);
  const v = where.param("String", value);
  const equals = `mapContains(attributes, ${k}) AND attributes[${k}] = ${v}`;
  const asciiWords = value.split(SEPARATORS).filter((w) => /^[A-Za-z0-9]+$/.test(w)).map((w) => w.toLowerCase());
  if (asciiWords.length === 0) return `(${equals})`;
  return `(hasAllTokens(${valueWords}, ${where.param("Array(String)", [...new Set(asciiWords)])}) AND ${equals})`;
}

/** The same term as a predicate on an event in memory; a test holds the two equal. */
export function textTermPredicate(term: string): (r: EventRecord) => boolean {
  const needle = term.toLowerCase();
  const words = wordsOf(term);
  const hasAll = (texts: string[]) => {
    const present = new Set(texts.flatMap(wordsOf));
    return words.every((w) => present.has(w));
  };
  const contains = (text: string) => text.toLowerCase().includes(needle);
  switch (shapeOf(term)) {
    case "word":
      return (r) => hasAll([r.message]) || hasAll(Object.values(r.attributes));
    case "phrase":
      return (r) =>
        (contains(r.message) && hasAll([r.message])) ||
        (Object.values(r.attributes).some(contains) && hasAll(Object.values(r.attributes)));
    case "no-words":
      return (r) => contains(r.message) || Object.values(r.attributes).some(contains);
  }
}
