// The console: sign-in, tenant picker, filters, the activity list, the drawer, tail, export.
// Every activity string reaches the page through textContent (see vlist/drawer); the page's
// CSP requires Trusted Types, so an HTML sink given a string would throw rather than parse it.

import { api, ApiError, session, setTenant } from './api.js';
import {
  apiParams, checkQ, emptyFilter, formatContext, listKey, parseContext, readHash, writeHash,
} from './filters.js';
import { VirtualList } from './vlist.js';
import { renderDetail } from './drawer.js';
import { LiveTail } from './tail.js';
import { exportView } from './exporter.js';
import { formatTime } from './time.js';

const PAGE = 100;
const ROW_HEIGHT = 30;

const $ = (id) => document.getElementById(id);

const state = {
  role: null, // 'admin' | 'tenant'
  tenants: [], // admin only: [{id, timezone, …}]
  tenant: null, // admin only: the tenant acted on
  zone: 'UTC',
  view: readHash(''),
  listKey: null,
  gen: 0, // bumped on every new list; answers for an older one are dropped
  nextCursor: null,
  hasMore: false,
  loading: false,
  ids: new Set(),
  fresh: new Set(), // ids that arrived through the tail in the last few seconds
  tail: null,
  error: null,
  openGen: 0,
};

// ---- status line -------------------------------------------------------------------------

function setStatus(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', Boolean(isError));
}

function listStatus() {
  if (state.error) return setStatus(state.error, true);
  const n = list.length;
  let t = `${n.toLocaleString('en')} ${n === 1 ? 'activity' : 'activities'}`;
  if (state.loading) t += ' · loading…';
  else if (state.hasMore) t += ' · scroll for more';
  else t += ' · end of results';
  if (state.tail) t += ' · live';
  setStatus(t, false);
}

function describe(e) {
  return e instanceof ApiError ? e.describe() : String(e.message || e);
}

// ---- the list ----------------------------------------------------------------------------

function createRow() {
  const row = document.createElement('div');
  for (const c of ['time', 'action', 'actor', 'resource', 'target', 'summary']) {
    const cell = document.createElement('span');
    cell.className = `c-${c}`;
    cell.setAttribute('role', 'gridcell');
    row.appendChild(cell);
  }
  return row;
}

function refText(o) {
  if (!o) return '';
  return o.id ? `${o.type} ${o.id}` : o.type;
}

function fillRow(row, a) {
  const [time, action, actor, resource, target, summary] = row.children;
  time.textContent = formatTime(a.created_at, state.zone);
  action.textContent = a.action;
  actor.textContent = a.actor ? a.actor.name || refText(a.actor) : '';
  resource.textContent = refText(a.resource);
  target.textContent = refText(a.target);
  summary.textContent = a.summary || '';
  row.dataset.id = a.id;
  row.classList.toggle('fresh', state.fresh.has(a.id));
}

const list = new VirtualList($('list'), {
  rowHeight: ROW_HEIGHT,
  createRow,
  fillRow,
  onSelect: (a) => openDetail(a.id),
  onNearEnd: () => loadMore(),
});

function showEmpty() {
  const empty = $('empty');
  empty.hidden = list.length > 0 || state.loading || Boolean(state.error);
  empty.textContent = 'No activities match this filter.';
}

async function loadFirstPage() {
  const gen = ++state.gen;
  stopTail();
  state.ids = new Set();
  state.nextCursor = null;
  state.hasMore = false;
  state.error = null;
  state.loading = true;
  list.setItems([]);
  listStatus();
  showEmpty();
  const p = apiParams(state.view.filter);
  p.set('limit', String(PAGE));
  try {
    const r = await api('/v1/activities', { params: p });
    if (gen !== state.gen) return;
    for (const a of r.data) state.ids.add(a.id);
    state.nextCursor = r.pagination.next_cursor;
    state.hasMore = Boolean(r.pagination.has_more && state.nextCursor);
    state.loading = false;
    list.setItems(r.data);
  } catch (e) {
    if (gen !== state.gen) return;
    state.loading = false;
    state.error = describe(e);
    if (e instanceof ApiError && e.status === 401) return signOut(describe(e));
  }
  listStatus();
  showEmpty();
  if ($('live').checked) startTail();
}

async function loadMore() {
  if (state.loading || !state.hasMore || !state.nextCursor) return;
  const gen = state.gen;
  state.loading = true;
  listStatus();
  const p = apiParams(state.view.filter);
  p.set('limit', String(PAGE));
  p.set('cursor', state.nextCursor);
  try {
    const r = await api('/v1/activities', { params: p });
    if (gen !== state.gen) return;
    const fresh = r.data.filter((a) => !state.ids.has(a.id));
    for (const a of fresh) state.ids.add(a.id);
    state.nextCursor = r.pagination.next_cursor;
    state.hasMore = Boolean(r.pagination.has_more && state.nextCursor);
    state.loading = false;
    list.append(fresh);
  } catch (e) {
    if (gen !== state.gen) return;
    state.loading = false;
    state.hasMore = false;
    state.error = describe(e);
  }
  listStatus();
}

// ---- live tail ---------------------------------------------------------------------------

function startTail() {
  stopTail();
  const gen = state.gen;
  state.tail = new LiveTail({
    params: apiParams(state.view.filter),
    after: list.items.reduce((m, a) => Math.max(m, a.seq || 0), 0),
    known: (id) => state.ids.has(id),
    onItems: (items) => {
      if (gen !== state.gen) return;
      for (const a of items) {
        state.ids.add(a.id);
        state.fresh.add(a.id);
      }
      list.prepend(items);
      showEmpty();
      listStatus();
      setTimeout(() => {
        for (const a of items) state.fresh.delete(a.id);
        list.refresh();
      }, 3000);
    },
    onError: (e) => setStatus(`live tail: ${describe(e)}`, true),
  });
  state.tail.start();
  listStatus();
}

function stopTail() {
  if (state.tail) state.tail.stop();
  state.tail = null;
}

// ---- the detail drawer -------------------------------------------------------------------

function openDetail(id) {
  navigate({ ...state.view, open: id });
}

async function showDetail(id) {
  const drawer = $('drawer');
  const body = $('drawer-body');
  const gen = ++state.openGen;
  if (!id) {
    drawer.hidden = true;
    body.replaceChildren();
    return;
  }
  drawer.hidden = false;
  $('drawer-title').textContent = 'Activity';
  const cached = list.items.find((a) => a.id === id);
  try {
    const a = cached || (await api(`/v1/activities/${encodeURIComponent(id)}`));
    if (gen !== state.openGen) return;
    $('drawer-title').textContent = a.action;
    renderDetail(body, a, {
      zone: state.zone,
      onFilter: (patch) => {
        const filter = { ...emptyFilter(), ...patch };
        navigate({ ...state.view, filter, open: null });
      },
    });
  } catch (e) {
    if (gen !== state.openGen) return;
    const p = document.createElement('p');
    p.className = 'error';
    p.textContent = describe(e);
    body.replaceChildren(p);
  }
}

// ---- filters, facets and the URL ---------------------------------------------------------

function navigate(view) {
  const hash = writeHash(view);
  if (hash === location.hash || (hash === '#' && !location.hash)) applyHash();
  else location.hash = hash;
}

function fillForm(filter) {
  for (const input of document.querySelectorAll('[data-filter]')) {
    input.value = filter[input.dataset.filter] || '';
  }
  $('f-context').value = formatContext(filter.context);
}

function readForm() {
  const filter = emptyFilter();
  for (const input of document.querySelectorAll('[data-filter]')) {
    filter[input.dataset.filter] = input.value.trim();
  }
  filter.context = parseContext($('f-context').value);
  checkQ(filter.q);
  return filter;
}

function applyForm() {
  let filter;
  try {
    filter = readForm();
  } catch (e) {
    state.error = describe(e);
    listStatus();
    return;
  }
  navigate({ ...state.view, filter, open: null });
}

function fillFacet(select, placeholder, values) {
  const options = [new Option(placeholder, '')];
  for (const v of values) options.push(new Option(`${v.value} (${v.count.toLocaleString('en')})`, v.value));
  select.replaceChildren(...options);
}

async function loadFacet(select, field) {
  const p = new URLSearchParams({ field, limit: '100' });
  const { since, until } = state.view.filter;
  if (since) p.set('since', since);
  if (until) p.set('until', until);
  try {
    const r = await api('/v1/activities/facets', { params: p });
    fillFacet(select, `${r.data.length ? 'values' : 'no values'} (${field})`, r.data);
  } catch (e) {
    fillFacet(select, `(${describe(e)})`, []);
  }
}

function loadFacets() {
  for (const select of document.querySelectorAll('select[data-facet]')) {
    loadFacet(select, select.dataset.facet);
  }
  loadContextFacet();
}

function loadContextFacet() {
  const key = $('f-context-key').value.trim();
  const select = $('f-context-facet');
  if (key) loadFacet(select, `context.${key}`);
  else fillFacet(select, 'type a key for its values', []);
}

function applyHash() {
  const view = readHash(location.hash);
  if (state.role === 'admin') {
    const known = state.tenants.find((t) => t.id === view.tenant);
    const t = known || state.tenants[0] || null;
    state.tenant = t ? t.id : null;
    state.zone = t ? t.timezone : 'UTC';
    view.tenant = state.tenant;
    setTenant(state.tenant);
    $('tenant').value = state.tenant || '';
  } else {
    // A tenant key acts on its own tenant; a tenant named in a shared link does not apply.
    view.tenant = null;
    state.zone = 'UTC';
    setTenant(null);
  }
  $('time-head').textContent = `Time (${state.zone})`;
  state.view = view;
  fillForm(view.filter);
  const key = listKey(view.filter, view.tenant);
  if (key !== state.listKey) {
    state.listKey = key;
    loadFirstPage();
    loadFacets();
  }
  showDetail(view.open);
}

// ---- sign-in -----------------------------------------------------------------------------

async function signIn(key) {
  // The admin key may list tenants; a tenant key is refused with 403. That is how the console
  // tells them apart (and the 403 is the one expected error in the browser's network log).
  try {
    const r = await api('/v1/tenants', { key });
    session.save(key, 'admin');
    state.tenants = r.data;
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      session.save(key, 'tenant');
    } else {
      throw e;
    }
  }
  await enter();
}

async function enter() {
  state.role = session.role();
  if (state.role === 'admin' && !state.tenants.length) {
    try {
      state.tenants = (await api('/v1/tenants', { key: session.key() })).data;
    } catch (e) {
      return signOut(describe(e));
    }
  }
  const select = $('tenant');
  select.replaceChildren(...state.tenants.map((t) => new Option(`${t.id} (${t.timezone})`, t.id)));
  $('tenant-label').hidden = state.role !== 'admin';
  const id = session.keyId();
  $('who').textContent = `${state.role === 'admin' ? 'admin key' : 'tenant key'}${id ? ` ${id}` : ''}`;
  $('signin').hidden = true;
  $('controls').hidden = false;
  $('app').hidden = false;
  state.listKey = null;
  applyHash();
  $('list').focus();
}

function signOut(message) {
  session.clear();
  stopTail();
  state.gen++;
  state.role = null;
  state.tenants = [];
  state.listKey = null;
  setTenant(null);
  list.setItems([]);
  $('live').checked = false;
  $('app').hidden = true;
  $('controls').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  $('key').value = '';
  $('key').focus();
}

// ---- wiring ------------------------------------------------------------------------------

function bind() {
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = $('key').value.trim();
    if (!key) return;
    $('signin-error').textContent = '';
    $('signin-submit').disabled = true;
    try {
      await signIn(key);
      $('key').value = '';
    } catch (err) {
      session.clear();
      $('signin-error').textContent = err instanceof ApiError && err.status === 401
        ? 'That key was not accepted.'
        : describe(err);
    } finally {
      $('signin-submit').disabled = false;
    }
  });
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    applyForm();
  });
  $('clear').addEventListener('click', () => {
    navigate({ ...state.view, filter: emptyFilter(), open: null });
  });
  for (const select of document.querySelectorAll('select[data-facet]')) {
    select.addEventListener('change', () => {
      if (!select.value) return;
      $(select.dataset.for).value = select.value;
      applyForm();
    });
  }
  $('f-context-key').addEventListener('change', loadContextFacet);
  $('f-context-facet').addEventListener('change', () => {
    const value = $('f-context-facet').value;
    const key = $('f-context-key').value.trim();
    if (!value || !key) return;
    let pairs;
    try {
      pairs = parseContext($('f-context').value).filter(([k]) => k !== key);
    } catch {
      pairs = [];
    }
    pairs.push([key, value]);
    $('f-context').value = formatContext(pairs);
    applyForm();
  });
  $('tenant').addEventListener('change', () => {
    navigate({ ...state.view, tenant: $('tenant').value, open: null });
  });
  $('live').addEventListener('change', () => {
    if ($('live').checked) startTail();
    else {
      stopTail();
      listStatus();
    }
  });
  for (const format of ['csv', 'ndjson']) {
    $(`export-${format}`).addEventListener('click', async () => {
      setStatus(`exporting ${format.toUpperCase()}…`, false);
      try {
        const size = await exportView(format, apiParams(state.view.filter), state.tenant);
        setStatus(`exported ${size.toLocaleString('en')} bytes of ${format.toUpperCase()}`, false);
      } catch (e) {
        setStatus(`export failed: ${describe(e)}`, true);
      }
    });
  }
  $('copy-link').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      setStatus('link copied: it holds the filter, not the key', false);
    } catch {
      setStatus(`link: ${location.href}`, false);
    }
  });
  $('sign-out').addEventListener('click', () => signOut(''));
  $('drawer-close').addEventListener('click', () => navigate({ ...state.view, open: null }));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('drawer').hidden) navigate({ ...state.view, open: null });
  });
  window.addEventListener('hashchange', () => {
    if (state.role) applyHash();
  });
}

bind();
if (session.key() && session.role()) {
  enter();
} else {
  $('signin').hidden = false;
  $('key').focus();
}

// Exposed for the browser tests and for curious users in the devtools: counts only, no data.
window.actlogConsole = {
  rows: () => list.length,
  domRows: () => list.domRows(),
  loading: () => state.loading,
  hasMore: () => state.hasMore,
  live: () => Boolean(state.tail),
};
