// Export of the current filter. A download link cannot carry the Authorization header, so the
// export is fetched with it and handed to the browser as a Blob URL with a file name.

import { api } from './api.js';

const TYPES = { csv: 'text/csv', ndjson: 'application/x-ndjson' };

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/**
 * Downloads every activity of `params` as `format` ('csv' or 'ndjson'). Resolves to the size in
 * bytes. The whole export is held in memory once; for very large logs `actlog export` on the
 * server is the better tool.
 */
export async function exportView(format, params, tenant) {
  const p = new URLSearchParams(params);
  p.set('format', format);
  const resp = await api('/v1/activities/export', { params: p, raw: true });
  const blob = new Blob([await resp.blob()], { type: TYPES[format] });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `actlog-${tenant || 'export'}-${stamp(new Date())}.${format}`;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has its own reference; the URL can go once the click has been handled.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob.size;
}
