// statelab play: what the dashboard (play.js) and the game view (game.js)
// share: sending a control to the playground's API.
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
