// A virtualized list: only the rows in view (plus a few either side) are in the DOM, and they
// are recycled as the list scrolls, so 10,000 rows cost what 40 do.
//
// Every row has the same height; a spacer gives the scroll area the height of all rows, and
// each pooled row element is moved to its place with a transform.

const OVERSCAN = 8;

export class VirtualList {
  /**
   * `viewport`: the scrolling element (holds a `.vspacer` child). `createRow()` makes an empty
   * row element; `fillRow(el, item, index)` writes an item into it (as text);
   * `onSelect(item, index)` runs on a click or Enter; `onNearEnd()` when the last rows come
   * into view.
   */
  constructor(viewport, { rowHeight, createRow, fillRow, onSelect, onNearEnd }) {
    this.viewport = viewport;
    this.spacer = viewport.querySelector('.vspacer');
    this.rowHeight = rowHeight;
    this.createRow = createRow;
    this.fillRow = fillRow;
    this.onSelect = onSelect;
    this.onNearEnd = onNearEnd;
    this.items = [];
    this.pool = [];
    this.version = 0;
    this.selected = -1;
    this.frame = 0;
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(viewport);
    viewport.addEventListener('click', (e) => {
      const row = e.target.closest('.row');
      if (row && row.dataset.index) this.select(Number(row.dataset.index), true);
    });
    viewport.addEventListener('keydown', (e) => this.key(e));
  }

  get length() {
    return this.items.length;
  }

  /** Replaces every item and scrolls to the top. */
  setItems(items) {
    this.items = items.slice();
    this.selected = -1;
    this.version++;
    this.viewport.scrollTop = 0;
    this.render();
  }

  /** Adds items at the end (the next page). */
  append(items) {
    if (!items.length) return;
    for (const it of items) this.items.push(it);
    this.version++;
    // At once, not on the next frame: the scroll height must grow with the items, or a reader
    // already at the bottom could scroll no further and never reach the next page.
    this.render();
  }

  /**
   * Adds items at the top (new activities). A reader who has scrolled down keeps seeing the
   * same rows; one at the top sees the new ones.
   */
  prepend(items) {
    if (!items.length) return;
    this.items = items.concat(this.items);
    if (this.selected >= 0) this.selected += items.length;
    this.version++;
    if (this.viewport.scrollTop > 0) this.viewport.scrollTop += items.length * this.rowHeight;
    this.render();
  }

  /** Rewrites the rows in view (their items changed in place). */
  refresh() {
    this.version++;
    this.schedule();
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  render() {
    const h = this.rowHeight;
    const n = this.items.length;
    this.spacer.style.height = `${n * h}px`;
    const view = this.viewport.clientHeight || h * 20;
    const top = this.viewport.scrollTop;
    const first = Math.max(0, Math.floor(top / h) - OVERSCAN);
    const count = Math.ceil(view / h) + 2 * OVERSCAN;
    while (this.pool.length < count) {
      const el = this.createRow();
      el.classList.add('row');
      el.setAttribute('role', 'row');
      el.vIndex = -1;
      el.vVersion = -1;
      this.viewport.appendChild(el);
      this.pool.push(el);
    }
    for (let k = 0; k < this.pool.length; k++) {
      const el = this.pool[k];
      // Each slot keeps the indexes congruent to it, so a row scrolled out of view is reused
      // for the one scrolled in and rows that stay in view are not rewritten.
      const i = first + ((k - first) % this.pool.length + this.pool.length) % this.pool.length;
      if (i >= first + count || i >= n) {
        if (!el.hidden) el.hidden = true;
        el.vIndex = -1;
        continue;
      }
      if (el.vIndex !== i || el.vVersion !== this.version) {
        this.fillRow(el, this.items[i], i);
        el.dataset.index = String(i);
        el.style.transform = `translateY(${i * h}px)`;
        el.vIndex = i;
        el.vVersion = this.version;
      }
      el.classList.toggle('selected', i === this.selected);
      if (el.hidden) el.hidden = false;
    }
    if (n > 0 && first + count >= n - OVERSCAN) this.onNearEnd();
  }

  /** The number of row elements in the DOM (for tests and the status line). */
  domRows() {
    return this.pool.filter((el) => !el.hidden).length;
  }

  select(i, open) {
    if (i < 0 || i >= this.items.length) return;
    this.selected = i;
    const h = this.rowHeight;
    const top = i * h;
    const vp = this.viewport;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + h > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + h - vp.clientHeight;
    this.render();
    if (open) this.onSelect(this.items[i], i);
  }

  key(e) {
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / this.rowHeight) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) {
      e.preventDefault();
      const from = this.selected < 0 ? Math.floor(this.viewport.scrollTop / this.rowHeight) - 1 : this.selected;
      this.select(Math.min(this.items.length - 1, Math.max(0, from + moves[e.key])), false);
    } else if (e.key === 'Enter' && this.selected >= 0) {
      e.preventDefault();
      this.select(this.selected, true);
    }
  }
}
