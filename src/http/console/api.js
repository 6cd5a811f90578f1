// The console's calls to the service's own API: the admin token of this tab (sessionStorage,
// never localStorage: it goes with the tab), and errors read from problem+json.

const TOKEN_KEY = "orders-console-token";

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

/// Calls `path` (same origin) with the token when there is one; the parsed JSON body, or an
/// ApiError with the problem's title and detail.
export async function call(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const t = token();
  if (t) {
    headers.Authorization = `Bearer ${t}`;
  }
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const title = (body && body.title) || `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, title, body && body.detail);
  }
  return body;
}
