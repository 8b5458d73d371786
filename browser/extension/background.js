// vigilo's browser extension: reports the active tab (URL and title) to the vigilo agent.
//
// The agent cannot see inside a browser: the window title says "Report - Chromium", not which
// site. This worker sends `{url, title}` through native messaging to `vigilo browser-host`,
// which passes it to the agent; the agent joins it to the window in front only when the title
// matches, so a late or stale report is never taken for the current page.
//
// Works in Chromium/Chrome (service worker) and Firefox (background script): same code.

const HOST = "org.vigilo.browser_host";
const api = globalThis.browser ?? globalThis.chrome;

let port = null;
let lastSent = "";
let retryDelay = 1000;

function connect() {
  if (port) return port;
  try {
    port = api.runtime.connectNative(HOST);
  } catch (e) {
    port = null;
    return null;
  }
  port.onDisconnect.addListener(() => {
    // The host ended (not installed, or the browser is closing): try again later, and send
    // the current tab again then, since the agent may have missed it.
    port = null;
    lastSent = "";
    setTimeout(report, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 60000);
  });
  return port;
}

async function report() {
  let tabs;
  try {
    tabs = await api.tabs.query({ active: true, lastFocusedWindow: true });
  } catch (e) {
    return;
  }
  const tab = tabs && tabs[0];
  if (!tab || !tab.url) return;
  const message = { url: tab.url, title: tab.title ?? "" };
  const key = JSON.stringify(message);
  if (key === lastSent) return;
  const p = connect();
  if (!p) return;
  try {
    p.postMessage(message);
    lastSent = key;
    retryDelay = 1000;
  } catch (e) {
    port = null;
  }
}

api.tabs.onActivated.addListener(report);
// A new tab or a navigation in the active tab reports through onUpdated, not onActivated.
api.tabs.onUpdated.addListener((_id, change, tab) => {
  if (tab.active && (change.url || change.title || change.status === "complete")) report();
});
api.windows.onFocusChanged.addListener(report);
// The first tab may have loaded before this worker started.
report();
