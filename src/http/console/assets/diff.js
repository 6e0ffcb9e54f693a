// `changes` as a readable diff: rows of (field, before, after).
//
// The API stores `changes` as any JSON object; writers use a few shapes, all understood here:
//   {"status": ["draft", "sent"]}                      a field → [before, after]
//   {"status": {"from": "draft", "to": "sent"}}        also {old, new} and {before, after}
//   {"before": {...}, "after": {...}}                  two snapshots, compared field by field
//   {"status": "sent"}                                 a field set, its old value unknown
// Nested objects become dotted paths (`address.city`).

const PAIRS = [['from', 'to'], ['old', 'new'], ['before', 'after']];

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function pairOf(v) {
  if (!isObject(v)) return null;
  const keys = Object.keys(v);
  for (const [a, b] of PAIRS) {
    if (keys.length === 2 && keys.includes(a) && keys.includes(b)) return [v[a], v[b]];
    if (keys.length === 1 && (keys[0] === a || keys[0] === b)) {
      return keys[0] === a ? [v[a], undefined] : [undefined, v[b]];
    }
  }
  return null;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Field-by-field differences of two snapshots. */
function compare(path, before, after, out) {
  if (isObject(before) && isObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const k of [...keys].sort()) {
      compare(path ? `${path}.${k}` : k, before[k], after[k], out);
    }
  } else if (!same(before, after)) {
    out.push(row(path, before, after));
  }
}

function row(path, before, after) {
  let kind = 'changed';
  if (before === undefined) kind = 'added';
  else if (after === undefined) kind = 'removed';
  return { path: path || '(value)', kind, before, after };
}

/** The rows of a `changes` object, or null when it is not an object. */
export function changeRows(changes) {
  if (!isObject(changes)) return null;
  const out = [];
  const top = pairOf(changes);
  if (top) {
    if (isObject(top[0]) || isObject(top[1])) compare('', top[0] || {}, top[1] || {}, out);
    else out.push(row('', top[0], top[1]));
    return out;
  }
  const walk = (path, v) => {
    const pair = Array.isArray(v) && v.length === 2 ? v : pairOf(v);
    if (pair) {
      if (isObject(pair[0]) && isObject(pair[1])) compare(path, pair[0], pair[1], out);
      else out.push(row(path, pair[0], pair[1]));
    } else if (isObject(v) && Object.keys(v).length) {
      for (const k of Object.keys(v).sort()) walk(`${path}.${k}`, v[k]);
    } else {
      out.push({ path, kind: 'set', before: undefined, after: v });
    }
  };
  for (const k of Object.keys(changes).sort()) walk(k, changes[k]);
  return out;
}

/** A value as one line of text: strings as they are, everything else as JSON. */
export function valueText(v) {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
