// The live tail: new activities of the current filter, handed over newest first.
//
// Today it polls GET /v1/activities (newest first) every 2 s for activities at or after the
// newest one shown, dropping the ids already shown. That misses an activity written later with
// an older `created_at` than the newest shown (writers may set `created_at`), because the list
// is in `created_at` order. The fix is the log's own order: once the server has
// `GET /v1/activities/stream` (Server-Sent Events in append (`seq`) order), `start` becomes
//
//   const es = new EventSource(`/v1/activities/stream?${params}&cursor=${cursor}`);
//   es.onmessage = (e) => onItems([JSON.parse(e.data)]);
//
// with `cursor` the position of the list's first page, so the tail starts exactly where the
// list did. Open question for that switch: EventSource cannot set an Authorization header, so
// the stream needs another credential (a short-lived, read-only token minted by the API for
// this filter, or a cookie session); the API key must not go into the stream's URL.

import { api } from './api.js';

const POLL_MS = 2000;
// Pages followed in one poll before giving up on catching up (then the next poll goes on).
const MAX_PAGES = 10;
const PAGE = 100;

export class LiveTail {
  /**
   * `params`: the filter's query parameters. `newest`: the newest activity shown, or null.
   * `known(id)`: whether an id is already shown. `onItems(items)`: new activities, newest
   * first. `onError(err)`: a failed poll (the tail keeps polling).
   */
  constructor({ params, newest, known, onItems, onError }) {
    this.params = params;
    this.newest = newest;
    this.known = known;
    this.onItems = onItems;
    this.onError = onError;
    this.timer = 0;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }

  async poll() {
    if (!this.running) return;
    try {
      const fresh = [];
      let cursor = null;
      for (let page = 0; page < MAX_PAGES; page++) {
        const p = new URLSearchParams(this.params);
        if (this.newest) {
          // `since` may be the user's own filter, so the bound goes in as one more (ANDed) q.
          p.append('q', JSON.stringify({ created_at: { gte: this.newest.created_at } }));
        }
        p.set('limit', String(PAGE));
        if (cursor) p.set('cursor', cursor);
        const r = await api('/v1/activities', { params: p });
        if (!this.running) return;
        for (const a of r.data) if (!this.known(a.id)) fresh.push(a);
        cursor = r.pagination.next_cursor;
        if (!r.pagination.has_more || !cursor) break;
      }
      if (fresh.length) {
        this.newest = fresh[0];
        this.onItems(fresh);
      }
    } catch (e) {
      if (this.running) this.onError(e);
    }
    if (this.running) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }
}
