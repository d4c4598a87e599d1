// statelab play: what the dashboard (play.js) and the game view (game.js)
// share: sending a control to the playground's API, and their lists of
// replicas, whose rows are updated in place.
"use strict";

// playSend sends a control and returns its answer's JSON (an empty object
// for a body-less answer), or throws an Error whose message says why the
// control failed, in the playground's words when it answered.
window.playSend = async (method, path, body) => {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new Error(`The playground did not answer: ${err.message}`);
  }
  const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data && data.error ? data.error.message : `HTTP ${resp.status}`);
  return data;
};

// playControl returns a function that sends a control (as playSend) one at
// a time: while one is pending, another returns null at once. On success it
// clears the status line with say, passes the answer to hooks.answer and
// returns it; on failure it shows why with say and returns null. It calls
// hooks.busy(true) when a control starts and hooks.busy(false) when it ends.
window.playControl = (say, hooks = {}) => {
  const { answer = () => {}, busy = () => {} } = hooks;
  let pending = false;
  return async (method, path, body) => {
    if (pending) return null;
    pending = true;
    busy(true);
    try {
      const data = await window.playSend(method, path, body);
      say("");
      answer(data);
      return data;
    } catch (err) {
      say(err.message, true);
      return null;
    } finally {
      pending = false;
      busy(false);
    }
  };
};

// playSay shows text in the status line el, marked as a failure or not.
window.playSay = (el, text, failed) => {
  el.textContent = text;
  el.classList.toggle("failed", !!failed);
};

// playSpan returns a new <span> of class cls holding text.
window.playSpan = (cls, text) => {
  const el = document.createElement("span");
  el.className = cls;
  if (text) el.textContent = text;
  return el;
};

// playReplicaShell returns the parts of a new replica row: an <li> (class
// "replica", data-id id) holding a head (the id, a badge, then the extra
// elements) and an empty box for the row's buttons.
window.playReplicaShell = (id, ...extra) => {
  const li = document.createElement("li");
  li.className = "replica";
  li.dataset.id = id;
  const head = document.createElement("div");
  head.className = "head";
  const badge = window.playSpan("badge");
  head.append(window.playSpan("id", id), badge, ...extra);
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  li.append(head, buttons);
  return { li, badge, buttons };
};

// playSyncRows keeps list's rows in step with items (objects with an id),
// without rebuilding the rows that stay, so keyboard focus survives: it
// removes the rows of the Map rows (id -> {li, …}) whose id is gone, then for
// each item in order takes its row from rowFor(id), lets update(row, item)
// fill it, and moves its <li> to the item's place.
window.playSyncRows = (list, rows, items, rowFor, update) => {
  const ids = new Set(items.map((it) => it.id));
  for (const [id, row] of rows) {
    if (!ids.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  items.forEach((it, i) => {
    const row = rowFor(it.id);
    update(row, it);
    if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] || null);
  });
};
