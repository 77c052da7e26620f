/** The server's Prometheus metrics, as a test reads them: GET /metrics, parsed. */
export interface Scrape {
  /** The value of the one series of `name` with these labels (others may be present); undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Like `value`, but 0 when the series does not exist yet (counters appear on first use). */
  count(name: string, labels?: Record<string, string>): number;
}

export async function scrapeMetrics(baseUrl: string, token?: string): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${await res.text()}`);
  return parseMetrics(await res.text());
}

/** Prometheus text exposition format: `name{a="x",b="y"} value` lines, `#` comments. */
export function parseMetrics(text: string): Scrape {
  const series: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    series.push({ name: match[1], labels, value: Number(match[3]) });
  }
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series; name more labels`);
    return found[0]?.value;
  };
  return { value, count: (name, labels) => value(name, labels) ?? 0 };
}
