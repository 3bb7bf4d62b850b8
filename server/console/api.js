// The one way the console talks to the server: the same JSON API as the phones, with
// the session in HttpOnly cookies the browser sends by itself. The CSRF token is held
// in this module's memory only (never in storage a script could read later) and sent
// on every unsafe request; an expired access token is refreshed once, from the
// refresh cookie, and the request retried.

let csrf = null;
let loggedOut = () => {};

export function setCsrf(token) {
  csrf = token;
}

export function onLoggedOut(f) {
  loggedOut = f;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = "GET", body, retry = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-Wangge-Csrf"] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const code = data?.error?.code ?? `http_${response.status}`;
  const message = data?.error?.message ?? response.statusText;
  if (response.status === 401 && code === "token_expired" && retry) {
    try {
      await api("/v1/console/session/refresh", { method: "POST", retry: false });
    } catch (e) {
      loggedOut();
      throw e;
    }
    return api(path, { method, body, retry: false });
  }
  if (response.status === 401 && path !== "/v1/console/session") loggedOut();
  throw new ApiError(response.status, code, message);
}
