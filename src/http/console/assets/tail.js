// The live tail: new activities of the current filter, in the log's own order.
//
// It reads GET /v1/activities/stream (Server-Sent Events in append (`seq`) order) with fetch,
// not EventSource: EventSource cannot send an Authorization header, and the key must not go
// into a URL. The stream resumes after the largest `seq` shown when the tail starts (every
// activity appended since the list was read, whatever its `created_at`); each event's id is its
// `seq`, so after a dropped connection (a server restart, say) the tail reconnects after the
// last one it received and misses nothing. Ids already shown are dropped.

import { api } from './api.js';

// Pause before reconnecting after the stream ended or failed.
const RETRY_MS = 1000;

export class LiveTail {
  /**
   * `params`: the filter's query parameters. `after`: the largest `seq` shown (0 if none).
   * `known(id)`: whether an id is already shown. `onItems(items)`: new activities, newest
   * first. `onError(err)`: a failed connection (the tail reconnects).
   */
  constructor({ params, after, known, onItems, onError }) {
    this.params = params;
    this.after = after || 0;
    this.known = known;
    this.onItems = onItems;
    this.onError = onError;
    this.running = false;
    this.abort = null;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.run();
  }

  stop() {
    this.running = false;
    if (this.abort) this.abort.abort();
  }

  async run() {
    while (this.running) {
      this.abort = new AbortController();
      try {
        const p = new URLSearchParams(this.params);
        p.set('cursor', String(this.after));
        const resp = await api('/v1/activities/stream', {
          params: p,
          raw: true,
          signal: this.abort.signal,
        });
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done || !this.running) break;
          buf += value;
          let end;
          const fresh = [];
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const a = this.parse(buf.slice(0, end));
            buf = buf.slice(end + 2);
            if (a && !this.known(a.id)) fresh.push(a);
          }
          if (fresh.length && this.running) this.onItems(fresh.reverse());
        }
      } catch (e) {
        if (!this.running) return;
        this.onError(e);
      }
      if (this.running) await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  // One event block: an activity (its id moves the resume position), or null (a keep-alive
  // comment, an error event).
  parse(block) {
    let event = 'message';
    let id = null;
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('id:')) id = line.slice(3).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trimStart();
    }
    if (event === 'error' && data) throw new Error(JSON.parse(data).error.message);
    if (event !== 'activity' || !data) return null;
    if (id) this.after = Math.max(this.after, Number(id));
    return JSON.parse(data);
  }
}
