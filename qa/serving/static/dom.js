// Small helpers shared by the page's modules.

const KEY_STORAGE = "qa.apiKey";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function dateLabel(published) {
  return published || "undated";
}

export function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
}

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch (_) {
    return "";
  }
}

// Returns the message to show: saved, removed, or why it could not be stored.
export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    return key ? "Saved." : "Removed.";
  } catch (_) {
    return "This browser does not allow storing the key.";
  }
}

// Request headers with the stored API key, when there is one.
export function authHeaders(headers = {}) {
  const key = storedKey();
  if (key) headers.Authorization = "Bearer " + key;
  return headers;
}

export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) {
    /* not JSON */
  }
  return "the server answered " + response.status + " " + response.statusText;
}
