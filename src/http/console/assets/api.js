// The API client: the signed-in key and every request the console makes.
//
// The key lives in this tab's sessionStorage only. It goes out in the Authorization header of
// same-origin requests and nowhere else: never in a URL, never logged, never in localStorage.

const KEY = 'actlog.key';
const ROLE = 'actlog.role';

/** An error answer of the API ({"error": {code, message, field}}) or a failed request. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }

  /** A sentence for the status line. */
  describe() {
    const where = this.field ? ` (${this.field})` : '';
    return `${this.message}${where}`;
  }
}

export const session = {
  key() {
    return sessionStorage.getItem(KEY);
  },
  /** 'admin' or 'tenant', as found at sign-in. */
  role() {
    return sessionStorage.getItem(ROLE);
  },
  save(key, role) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ROLE, role);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ROLE);
  },
  /** The public part of a key (`actlog_<key_id>_<secret>`), to show who is signed in. */
  keyId() {
    const m = /^actlog_([0-9a-f]{16})_/.exec(this.key() || '');
    return m ? m[1] : null;
  },
};

// The tenant an admin key acts on (sent as X-Tenant-Id); null for tenant keys, whose tenant is
// their own.
let tenant = null;

export function setTenant(t) {
  tenant = t;
}

/**
 * Calls the API. `params` is a URLSearchParams (or nothing); `raw` returns the Response
 * (for streamed exports) instead of its JSON. Throws ApiError on a non-2xx answer.
 */
export async function api(path, { params, key, raw, signal } = {}) {
  const headers = { Authorization: `Bearer ${key || session.key() || ''}` };
  if (tenant && !key) headers['X-Tenant-Id'] = tenant;
  const query = params && [...params.keys()].length ? `?${params}` : '';
  let resp;
  try {
    resp = await fetch(`${path}${query}`, {
      headers,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server did not answer; is it running?');
  }
  if (!resp.ok) {
    let body = null;
    try {
      body = await resp.json();
    } catch {
      // Not the API's error shape; the status says enough.
    }
    const err = body && body.error;
    throw new ApiError(
      resp.status,
      err ? err.code : 'http',
      err ? err.message : `HTTP ${resp.status}`,
      err ? err.field : null,
    );
  }
  return raw ? resp : resp.json();
}
