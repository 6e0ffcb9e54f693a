// The detail drawer: one activity, whole, every string as text.

import { changeRows, valueText } from './diff.js';
import { formatTime } from './time.js';

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function section(title) {
  const s = el('section', 'detail-section');
  s.appendChild(el('h3', null, title));
  return s;
}

function ref(o) {
  if (!o) return null;
  return o.id ? `${o.type} ${o.id}` : o.type;
}

/**
 * Writes `a` into `body`. `onFilter(filterPatch)` narrows the list to something shown here
 * (this resource, this actor).
 */
export function renderDetail(body, a, { zone, onFilter }) {
  const parts = [];

  const facts = el('dl', 'facts');
  const fact = (name, value, filterPatch) => {
    if (value === null || value === undefined || value === '') return;
    facts.appendChild(el('dt', null, name));
    const dd = el('dd', null, value);
    if (filterPatch) {
      const b = el('button', 'link', 'filter');
      b.type = 'button';
      b.title = `Show only activities with this ${name.toLowerCase()}`;
      b.addEventListener('click', () => onFilter(filterPatch));
      dd.appendChild(document.createTextNode(' '));
      dd.appendChild(b);
    }
    facts.appendChild(dd);
  };
  fact('Time', `${formatTime(a.created_at, zone)} (${zone})`);
  fact('created_at', a.created_at);
  fact('Id', a.id);
  fact('Action', a.action, { action: a.action });
  fact('Resource', ref(a.resource), {
    resource_type: a.resource.type,
    resource_id: a.resource.id || '',
  });
  if (a.actor) {
    const who = [a.actor.name, a.actor.email && `<${a.actor.email}>`].filter(Boolean).join(' ');
    fact('Actor', `${ref(a.actor)}${who ? ` — ${who}` : ''}`, {
      actor_type: a.actor.type,
      actor_id: a.actor.id || '',
    });
  } else {
    fact('Actor', '(none recorded)');
  }
  fact('Target', ref(a.target), a.target && {
    target_type: a.target.type,
    target_id: a.target.id || '',
  });
  fact('Summary', a.summary);
  fact('Reason', a.reason);
  parts.push(facts);

  const ctx = Object.entries(a.context || {});
  if (ctx.length) {
    const s = section('Context');
    const t = el('table', 'kv');
    for (const [k, v] of ctx) {
      const tr = el('tr');
      tr.appendChild(el('th', null, k));
      tr.appendChild(el('td', null, v));
      t.appendChild(tr);
    }
    s.appendChild(t);
    parts.push(s);
  }

  if (a.changes) {
    const s = section('Changes');
    const rows = changeRows(a.changes);
    if (rows && rows.length) {
      const t = el('table', 'diff');
      const head = el('tr');
      for (const h of ['Field', 'Before', 'After']) head.appendChild(el('th', null, h));
      t.appendChild(head);
      for (const r of rows) {
        const tr = el('tr', `diff-${r.kind}`);
        tr.appendChild(el('td', 'diff-field', r.path));
        const before = el('td', r.before === undefined ? 'diff-none' : 'diff-before');
        before.textContent = r.before === undefined ? (r.kind === 'set' ? '?' : '—') : valueText(r.before);
        const after = el('td', r.after === undefined ? 'diff-none' : 'diff-after');
        after.textContent = r.after === undefined ? '—' : valueText(r.after);
        tr.appendChild(before);
        tr.appendChild(after);
        t.appendChild(tr);
      }
      s.appendChild(t);
    } else {
      s.appendChild(el('pre', null, JSON.stringify(a.changes, null, 2)));
    }
    parts.push(s);
  }

  for (const [name, value] of [['Metadata', a.metadata], ['Display', a.display]]) {
    if (value) {
      const s = section(name);
      s.appendChild(el('pre', null, JSON.stringify(value, null, 2)));
      parts.push(s);
    }
  }

  const raw = el('details', 'detail-section');
  raw.appendChild(el('summary', null, 'The whole activity as JSON'));
  raw.appendChild(el('pre', 'raw', JSON.stringify(a, null, 2)));
  parts.push(raw);

  body.replaceChildren(...parts);
}
