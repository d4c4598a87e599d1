// statelab play: the dashboard. It renders the "state" Server-Sent Events,
// appends the "log" events, and sends the controls to /play/api/. No
// framework, no CDN. Elements are updated in place, never rebuilt, so that
// keyboard focus survives the updates that arrive twice a second.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let state = null;
  let pending = false;
  let lastPhase = "";
  let lastStrategy = "";
  const seen = new Set();
  const rows = new Map(); // replica id -> {li, parts}

  const say = (text, failed) => window.playSay($("status"), text, failed);

  const control = window.playControl(say, {
    busy: (p) => {
      pending = p;
      render();
    },
    // Controls answer with the new state: show it without waiting for the
    // next event.
    answer: (data) => {
      if (data && Array.isArray(data.strategies)) state = data;
    },
  });

  const disabled = () => !state || state.phase !== "running" || !!state.busy;

  // setOff marks a control unavailable with aria-disabled rather than the
  // disabled property: a disabled element drops keyboard focus, and these
  // controls change availability while a person is using them.
  function setOff(el, off) {
    el.setAttribute("aria-disabled", off ? "true" : "false");
  }
  const isOff = (el) => el.getAttribute("aria-disabled") === "true";

  function fmtRate(x) {
    if (!x) return "0 req/s";
    return x < 10 ? `${x.toFixed(1)} req/s` : `${Math.round(x)} req/s`;
  }

  function replicaRow(id) {
    let row = rows.get(id);
    if (row) return row;
    const youTag = window.playSpan("you-tag");
    const metrics = window.playSpan("metrics");
    const { li, badge, buttons } = window.playReplicaShell(id, youTag, metrics);
    const mk = (label, cls, onclick) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      if (cls) b.className = cls;
      b.addEventListener("click", () => { if (!isOff(b)) onclick(); });
      buttons.append(b);
      return b;
    };
    const kill = mk(`Kill ${id}`, "danger", () => control("POST", `/play/api/replicas/${encodeURIComponent(id)}/kill`));
    const pause = mk(`Pause ${id}`, "", () => {
      const act = row.status === "paused" ? "resume" : "pause";
      control("POST", `/play/api/replicas/${encodeURIComponent(id)}/${act}`);
    });
    const restart = mk(`Restart ${id}`, "", () => control("POST", `/play/api/replicas/${encodeURIComponent(id)}/restart`));
    const remove = mk(`Remove ${id}`, "", () => control("DELETE", `/play/api/replicas/${encodeURIComponent(id)}`));
    row = { li, badge, youTag, metrics, kill, pause, restart, remove, status: "" };
    rows.set(id, row);
    return row;
  }

  function renderReplicas() {
    const reps = (state && state.replicas) || [];
    const off = disabled();
    const mine = state && state.you ? state.you.served_by : "";
    window.playSyncRows($("replicas"), rows, reps, replicaRow, (row, r) => {
      row.status = r.status;
      row.li.className = `replica ${r.status}${r.id === mine ? " you" : ""}`;
      row.badge.textContent = r.status;
      row.youTag.textContent = r.id === mine ? "served you last" : "";
      const carts = r.sessions === null || r.sessions === undefined ? "" : ` · ${r.sessions} ${r.sessions === 1 ? "cart" : "carts"}`;
      const ramp = r.weight > 0 && r.effective_weight < r.weight ? ` · slow start: weight ${r.effective_weight.toFixed(2)} of ${r.weight}` : "";
      const restarts = r.restarts > 0 ? ` · ${r.restarts} ${r.restarts === 1 ? "restart" : "restarts"} between health checks` : "";
      row.metrics.textContent = `${fmtRate(r.rps)} · ${r.inflight} in flight${carts}${ramp}${restarts}`;
      setOff(row.kill, off || r.status === "down");
      row.pause.textContent = r.status === "paused" ? `Resume ${r.id}` : `Pause ${r.id}`;
      setOff(row.pause, off || r.status === "down");
      setOff(row.restart, off);
      setOff(row.remove, off || reps.length <= 1);
    });
  }

  function render() {
    if (!state) return;
    const off = disabled();
    const sel = $("strategy");
    if (sel.options.length === 0) {
      for (const name of state.strategies) {
        const o = document.createElement("option");
        o.value = o.textContent = name;
        sel.append(o);
      }
    }
    if (state.strategy !== lastStrategy && document.activeElement !== sel) sel.value = state.strategy;
    setOff($("rebuild"), !!state.busy);
    $("where").textContent = state.phase === "running"
      ? `${state.strategy}: your cart lives ${state.where}.`
      : state.phase === "failed" ? `${state.strategy}: the cluster failed to start.` : `${state.strategy}: starting the cluster…`;

    if (state.phase === "failed") say(state.error, true);
    else if (state.busy) say(`Working: ${state.busy}…`);
    else if ($("status").textContent.startsWith("Working:")) say("");

    const b = state.balancer || {};
    $("lb-policy").textContent = b.policy || "–";
    $("lb-rps").textContent = b.reachable ? fmtRate(b.rps) : "–";
    $("lb-url").textContent = b.url || "–";

    const s = state.store || {};
    $("store-kind").textContent = s.name ? (s.addr ? `${s.name} (${s.addr})` : s.name) : "–";
    const held = s.sessions === null || s.sessions === undefined ? "" : ` · ${s.sessions} ${s.sessions === 1 ? "cart" : "carts"}`;
    $("store-state").textContent = !s.kind ? "–" : !s.external ? "nothing to stop" : (s.up ? "up" : "stopped") + held;
    const stop = $("store-stop"), start = $("store-start");
    const name = s.name || "store";
    stop.textContent = `Stop ${name}`;
    start.textContent = `Start ${name}`;
    $("store-buttons").hidden = !s.external;
    setOff(stop, off || !s.external || !s.up);
    setOff(start, off || !s.external || s.up);

    renderReplicas();
    setOff($("add-replica"), off || (state.replicas || []).length >= 9);

    const sh = state.shoppers || {};
    const on = $("shoppers-on"), rate = $("shoppers-rate");
    // While a control is on its way, the box shows the person's click,
    // not the state from before it.
    if (!pending) on.checked = !!sh.on;
    setOff(on, off || !sh.available);
    if (document.activeElement !== rate) {
      rate.value = sh.rate || 5;
      $("shoppers-rate-out").textContent = rate.value;
    }
    rate.disabled = !sh.available;
    $("shoppers-note").textContent = sh.available
      ? "Simulated shoppers go straight to the balancer; only the shop pane is “you”."
      : "Background shoppers are not available in this build.";

    const you = state.you || {};
    $("you-served").textContent = you.served_by || "–";
    const items = you.items || [];
    $("you-items").textContent = !you.known ? "–"
      : items.length === 0 ? "empty"
      : items.map((l) => `${l.qty}× ${l.name || l.sku}`).join(", ");
    const mine = (state.replicas || []).find((r) => r.id === you.served_by);
    const kill = $("kill-mine");
    kill.textContent = mine ? `Kill ${mine.id}, the replica that served me` : "Kill the replica that served me";
    setOff(kill, off || !mine || mine.status === "down");

    if (lastPhase && lastPhase !== "running" && state.phase === "running" && lastStrategy && lastStrategy !== state.strategy) {
      reloadShop();
    }
    lastPhase = state.phase;
    if (state.phase === "running") lastStrategy = state.strategy;
  }

  function reloadShop() {
    $("shop-frame").src = "/shop/";
  }

  function addLog(e) {
    if (seen.has(e.seq)) return;
    seen.add(e.seq);
    const li = document.createElement("li");
    li.className = e.kind;
    const t = document.createElement("time");
    const d = new Date(e.time);
    t.dateTime = e.time;
    t.textContent = d.toLocaleTimeString([], { hour12: false });
    li.append(t, document.createTextNode(e.text));
    const log = $("log");
    log.insertBefore(li, log.firstChild);
    while (log.children.length > 200) log.lastChild.remove();
  }

  function connect() {
    const es = new EventSource("/play/events");
    es.addEventListener("state", (ev) => {
      state = JSON.parse(ev.data);
      // The game view (game.js) renders its part of the same state.
      document.dispatchEvent(new CustomEvent("play:state", { detail: state }));
      render();
    });
    es.addEventListener("log", (ev) => addLog(JSON.parse(ev.data)));
    es.addEventListener("error", () => say("Reconnecting to the playground…"));
    es.addEventListener("open", () => {
      if ($("status").textContent.startsWith("Reconnecting")) say("");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("strategy-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (isOff($("rebuild"))) return;
      const data = await control("POST", "/play/api/strategy", { strategy: $("strategy").value });
      if (data) reloadShop();
    });
    $("add-replica").addEventListener("click", () => { if (!isOff($("add-replica"))) control("POST", "/play/api/replicas"); });
    for (const b of document.querySelectorAll("[data-store]")) {
      b.addEventListener("click", () => { if (!isOff(b)) control("POST", `/play/api/store/${b.dataset.store}`); });
    }
    $("shoppers-on").addEventListener("click", (ev) => { if (isOff(ev.target)) ev.preventDefault(); });
    $("shoppers-on").addEventListener("change", (ev) => control("POST", "/play/api/shoppers", { on: ev.target.checked }));
    $("shoppers-rate").addEventListener("input", (ev) => { $("shoppers-rate-out").textContent = ev.target.value; });
    $("shoppers-rate").addEventListener("change", (ev) => control("POST", "/play/api/shoppers", { rate: Number(ev.target.value) }));
    $("kill-mine").addEventListener("click", () => {
      if (isOff($("kill-mine"))) return;
      const id = state && state.you && state.you.served_by;
      if (id) control("POST", `/play/api/replicas/${encodeURIComponent(id)}/kill`);
    });
    $("reload-shop").addEventListener("click", reloadShop);
    connect();
  });
})();
