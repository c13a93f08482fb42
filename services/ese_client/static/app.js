// The click-through page of `ese-client --web`: the original demo's standalone mode.
//
// Clicks, typing and the F key are CLICK_STREAM_EVENTs, buffered and posted in batches to
// POST /events (a partial batch after 1 s without a new event, or when the page is hidden);
// the order panel posts ORDER_STATE_UPDATE_EVENTs one by one to POST /event. Every event has an
// `id`, so a retried request is stored once. Settings come from the server as a JSON blob.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("ese-config").textContent);
  const CLICK = "CLICK_STREAM_EVENT";
  const ORDER = "ORDER_STATE_UPDATE_EVENT";
  const STATES = ["ORDER_CREATED", "ORDER_ALLOCATED", "ORDER_STARTED", "ORDER_COMPLETED"];
  const STATE_WORDS = ["created", "allocated", "started", "completed"];
  const LOG_LINES = 6;

  const $ = (id) => document.getElementById(id);
  const counts = { sent: 0, acknowledged: 0, failed: 0 };

  // Event ids: a random prefix per page load plus a counter. Not crypto.randomUUID: it exists
  // only in secure contexts, and the page is also opened as http://<LAN address>:3006.
  // 48 random bits: two page loads within the server's retention window never share ids.
  const prefix = (() => {
    const bytes = new Uint8Array(6);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  })();
  let sequence = 0;
  const nextId = () => `${prefix}-${++sequence}`;

  const headers = { "Content-Type": "application/json" };
  if (config.token) headers.Authorization = `Bearer ${config.token}`;
  let headerProblem = null;
  try {
    new Headers(headers); // a token with characters HTTP cannot carry fails every request
  } catch (error) {
    headerProblem = "the ingest token holds characters an HTTP header cannot carry; use plain ASCII";
  }

  // ----- the status panel ---------------------------------------------------------------------

  function render() {
    for (const [name, value] of Object.entries(counts)) {
      document.querySelector(`[data-testid="${name}-count"]`).textContent = String(value);
    }
    const waiting = buffer.length;
    $("waiting").textContent =
      waiting === 0
        ? "No events waiting for a batch."
        : `${waiting} event${waiting === 1 ? "" : "s"} waiting for a batch.`;
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  function showError(text) {
    const box = $("last-error");
    box.textContent = `${clock()} ${text}`;
    box.hidden = false;
  }

  function logRequest(path, count, outcome, ok) {
    const log = $("log");
    const empty = log.querySelector(".empty");
    if (empty) empty.remove();
    const line = document.createElement("li");
    line.className = ok ? "ok" : "bad";
    const what = document.createElement("span");
    what.textContent = `${clock()} POST ${path} · ${count} event${count === 1 ? "" : "s"}`;
    const result = document.createElement("span");
    result.className = "outcome";
    result.textContent = outcome;
    line.append(what, result);
    log.prepend(line);
    while (log.children.length > LOG_LINES) log.lastElementChild.remove();
  }

  // ----- sending --------------------------------------------------------------------------------

  // The server's `message` and first field error, from its JSON error body.
  async function serverMessage(response) {
    try {
      const body = await response.json();
      const first = Array.isArray(body.errors) && body.errors[0];
      const detail = first && typeof first === "object" ? `${first.field}: ${first.message}` : first;
      return [body.message, detail].filter(Boolean).join(" — ");
    } catch (error) {
      return response.statusText;
    }
  }

  // An HTTP status in words, with what to do about it. For 401/403/404 these words say more
  // than the server's message; for the rest its message names what was wrong.
  function describe(status, message) {
    const said = message ? ` (${message})` : "";
    switch (status) {
      case 401:
        return config.token
          ? "401: token rejected — the page's ESE_INGEST_TOKEN is not the ingest shards' token"
          : "401: token required — start ese-client --web with ESE_INGEST_TOKEN set";
      case 403:
        return "403: forbidden — REACT_APP_BE_SERVER must be the load balancer or an ingest shard";
      case 404:
        return "404: not found — REACT_APP_BE_SERVER must be the server's base URL, without /event";
      case 413:
        return `413: request too large${said}`;
      case 429:
        return `429: too many requests${said}`;
      case 503:
        return `503: the ingest side is unavailable — is an ingest shard up, and its Redis?${said}`;
      default:
        return status >= 500 ? `${status}: server error${said}` : `${status}: rejected${said}`;
    }
  }

  function networkError() {
    return (
      `network error: is the load balancer up at ${config.server}? ` +
      `(If it is, the shards' ESE_CORS_ORIGINS must list ${location.origin}.)`
    );
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // POST one request until acknowledged, rejected or out of attempts, always with the same body
  // (so the same event ids). keepalive: a request under way outlives the page being closed.
  async function deliver(path, item, attempts) {
    const count = item.events.length;
    counts.sent += count;
    render();
    if (headerProblem) {
      counts.failed += count;
      showError(headerProblem);
      logRequest(path, count, "not sent", false);
      render();
      return;
    }
    for (let attempt = 1; ; attempt++) {
      let problem;
      let retry = true;
      try {
        const response = await fetch(config.server + path, {
          method: "POST",
          headers,
          body: item.body,
          mode: "cors",
          credentials: "omit",
          cache: "no-store",
          keepalive: true,
        });
        if (response.ok) {
          counts.acknowledged += count;
          logRequest(path, count, `${response.status} ✓`, true);
          render();
          return;
        }
        retry = response.status >= 500 || response.status === 429;
        problem = describe(response.status, await serverMessage(response));
        logRequest(path, count, String(response.status), false);
      } catch (error) {
        problem = networkError();
        logRequest(path, count, "network error", false);
      }
      if (!retry || attempt >= attempts) {
        counts.failed += count;
        const tries = attempt > 1 ? ` (gave up after ${attempt} attempts)` : "";
        showError(problem + tries);
        render();
        return;
      }
      showError(`${problem} — retrying (attempt ${attempt + 1} of ${attempts})`);
      await sleep(Math.min(config.backoffMs * 2 ** (attempt - 1), config.maxBackoffMs));
    }
  }

  // One lane per route: its requests go one after the other, so events of one kind reach the
  // server in the order they happened (the states of an order above all).
  function lane(path, wrap) {
    const queue = [];
    let busy = false;
    async function pump() {
      if (busy) return;
      busy = true;
      try {
        while (queue.length) {
          await deliver(path, queue[0], config.maxAttempts);
          queue.shift();
        }
      } finally {
        busy = false;
      }
    }
    return {
      push(events) {
        queue.push({ events, body: JSON.stringify(wrap(events)) });
        pump();
      },
      // The page is being unloaded: whatever waits behind the request under way goes now, in
      // parallel and once (keepalive carries it past the unload; nobody is left to retry).
      drain() {
        for (const item of queue.splice(busy ? 1 : 0)) deliver(path, item, 1);
      },
    };
  }

  const clicks = lane("/events", (events) => ({ events }));
  const orders = lane("/event", (events) => events[0]);

  function makeEvent(eventType, data) {
    return { id: nextId(), eventType, timestamp: Date.now(), ip: config.ip, data };
  }

  // ----- click stream: buffered, in batches -------------------------------------------------------

  let buffer = [];
  let idleTimer = null;

  function flushClicks() {
    clearTimeout(idleTimer);
    idleTimer = null;
    if (!buffer.length) return;
    const batch = buffer;
    buffer = [];
    clicks.push(batch);
    render();
  }

  function addClick(subtype) {
    buffer.push(makeEvent(CLICK, { event: subtype }));
    clearTimeout(idleTimer);
    if (buffer.length >= config.batchSize) {
      flushClicks();
    } else {
      idleTimer = setTimeout(flushClicks, config.idleFlushMs);
      render();
    }
  }

  $("click-button").addEventListener("click", () => addClick("BUTTON_CLICK_EVENT"));

  const input = $("text-input");
  let filled = input.value !== "";
  input.addEventListener("input", () => {
    // Only the step from empty to non-empty counts, not every keystroke.
    const now = input.value !== "";
    if (now && !filled) addClick("INPUT_PASSED_EVENT");
    filled = now;
  });

  function editable(target) {
    return (
      target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
    );
  }

  document.addEventListener("keydown", (event) => {
    // Typing an "f" into the field is typing, and Ctrl+F is the browser's search.
    if (event.key !== "f" && event.key !== "F") return;
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    if (editable(event.target)) return;
    addClick("KEY_PRESS_EVENT");
  });

  // A hidden page may never come back: send what waits now instead of after the idle second.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flushClicks();
  });
  window.addEventListener("pagehide", () => {
    flushClicks();
    clicks.drain();
    orders.drain();
  });

  // ----- the order panel: one event per state, in life-cycle order --------------------------------

  let orderNumber = 0;
  let order = null;
  const stateButtons = Array.from(document.querySelectorAll(".states button"));

  function renderOrder() {
    $("order-id").textContent = order.id;
    $("order-state").textContent = order.done ? STATE_WORDS[order.done - 1] : "new";
    $("order-state").dataset.done = String(order.done);
    for (const button of stateButtons) {
      const index = Number(button.dataset.state);
      // Only the next state can be sent: the life cycle goes one way.
      button.disabled = index !== order.done;
      button.classList.toggle("done", index < order.done);
    }
  }

  function newOrder() {
    orderNumber += 1;
    order = { id: `${prefix}-order-${orderNumber}`, done: 0 };
    renderOrder();
  }

  for (const button of stateButtons) {
    button.addEventListener("click", () => {
      const index = Number(button.dataset.state);
      if (index !== order.done) return;
      const now = Date.now();
      const event = makeEvent(ORDER, { orderId: order.id, state: STATES[index], timestamp: now });
      event.timestamp = now;
      orders.push([event]);
      order.done += 1;
      renderOrder();
    });
  }
  $("order-new").addEventListener("click", newOrder);

  // ----- start ----------------------------------------------------------------------------------

  $("server").textContent = config.server;
  $("identity").textContent = config.ip;
  $("token-state").textContent = config.token ? "with the ingest token" : "without a token";
  $("batch-size").textContent = String(config.batchSize);
  newOrder();
  render();
  if (headerProblem) showError(headerProblem);
  document.documentElement.dataset.ready = "true";
})();
