// Times as the tenant reads them: `yyyy-MM-dd HH:mm:ss` in one IANA zone.

const cache = new Map();

function formatter(zone) {
  let f = cache.get(zone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-GB', {
        timeZone: zone,
        year: 'numeric', month: '2-digit', day: '2-digit',
        hour: '2-digit', minute: '2-digit', second: '2-digit',
        hourCycle: 'h23',
      });
    } catch {
      // A zone this browser does not know: fall back to UTC rather than the browser's own.
      f = formatter('UTC');
    }
    cache.set(zone, f);
  }
  return f;
}

/** `2024-05-01T10:00:00.123456Z` → `2024-05-01 12:00:00` in `zone`. */
export function formatTime(iso, zone) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const parts = {};
  for (const p of formatter(zone).formatToParts(d)) parts[p.type] = p.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}
