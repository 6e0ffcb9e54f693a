// The view's state in the URL: the filter (and the tenant and open activity), never the key.
//
// The state lives in the fragment (`#action=invoice.*&context.origin=api`), which browsers do
// not send to servers or in Referer headers, so a shared link carries only what it shows.

/** The v1 list filters that are one text value (a comma list where the API takes lists). */
export const TEXT_FILTERS = [
  'action', 'resource_type', 'resource_id', 'actor_type', 'actor_id', 'actor_name',
  'target_type', 'target_id', 'id', 'since', 'until', 'q',
];

/** A filter: the text filters, `text` (summary contains), `context` ([key, value] pairs). */
export function emptyFilter() {
  const f = { text: '', context: [] };
  for (const k of TEXT_FILTERS) f[k] = '';
  return f;
}

/** Reads the fragment: { filter, tenant, open }. */
export function readHash(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const filter = emptyFilter();
  for (const [k, v] of p) {
    if (TEXT_FILTERS.includes(k) || k === 'text') filter[k] = v;
    else if (k.startsWith('context.') && k.length > 8) filter.context.push([k.slice(8), v]);
  }
  return { filter, tenant: p.get('tenant') || null, open: p.get('open') || null };
}

/** Writes the fragment for a view (empty values left out). */
export function writeHash({ filter, tenant, open }) {
  const p = new URLSearchParams();
  if (tenant) p.set('tenant', tenant);
  for (const k of [...TEXT_FILTERS, 'text']) if (filter[k]) p.set(k, filter[k]);
  for (const [k, v] of filter.context) p.append(`context.${k}`, v);
  if (open) p.set('open', open);
  return `#${p}`;
}

/** The query parameters of GET /v1/activities (and export) for a filter. */
export function apiParams(filter) {
  const p = new URLSearchParams();
  for (const k of TEXT_FILTERS) if (filter[k]) p.append(k, filter[k]);
  for (const [k, v] of filter.context) p.append(`context.${k}`, v);
  // Repeated q parameters are ANDed by the API, so the free text needs no merging with q.
  if (filter.text) p.append('q', JSON.stringify({ summary: { contains: filter.text } }));
  return p;
}

/** A key that changes exactly when the list would (the open drawer does not count). */
export function listKey(filter, tenant) {
  return `${tenant || ''}|${apiParams(filter)}`;
}

/** Parses the context text area: one KEY=VALUE a line. Throws on a line without '='. */
export function parseContext(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`context: "${line}" is not KEY=VALUE`);
    out.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  }
  return out;
}

export function formatContext(pairs) {
  return pairs.map(([k, v]) => `${k}=${v}`).join('\n');
}

/** Checks q before it goes out, so a typo is named here rather than as a 400. */
export function checkQ(q) {
  if (!q) return;
  let v;
  try {
    v = JSON.parse(q);
  } catch (e) {
    throw new Error(`q is not valid JSON: ${e.message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new Error('q must be a JSON object of field → value or {operator: operand}');
  }
}
