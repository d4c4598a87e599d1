// statelab play: the game view. It renders state.game from the same
// Server-Sent Events as the dashboard (play.js passes each state on as a
// "play:state" event) and sends its controls to /play/api/game. Elements
// are updated in place so that keyboard focus survives the updates.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const CELL = 16; // the arena is 16×16 cells on a 256-pixel canvas
  let game = null;
  const rows = new Map(); // game server id -> {li, badge, buttons}

  const say = (text, failed) => window.playSay($("game-status"), text, failed);

  const control = window.playControl(say);

  const lobby = () => (game && game.rooms && game.rooms[0]) || null;
  const running = () => !!game && game.phase === "running";

  function replicaRow(id) {
    let row = rows.get(id);
    if (row) return row;
    const { li, badge, buttons } = window.playReplicaShell(id);
    const acts = {};
    for (const act of ["kill", "pause", "resume", "restart"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `${act[0].toUpperCase()}${act.slice(1)} game ${id}`;
      if (act === "kill") b.className = "danger";
      b.addEventListener("click", () => {
        if (!off(b)) control("POST", `/play/api/game/replicas/${encodeURIComponent(id)}/${act}`);
      });
      buttons.append(b);
      acts[act] = b;
    }
    row = { li, badge, acts };
    rows.set(id, row);
    return row;
  }

  function renderReplicas() {
    const reps = (game && game.replicas) || [];
    window.playSyncRows($("game-replicas"), rows, reps, replicaRow, (row, r) => {
      row.li.className = `replica ${r.state}`;
      row.badge.textContent = r.state;
      row.acts.kill.setAttribute("aria-disabled", r.state === "down" ? "true" : "false");
      row.acts.pause.hidden = r.state === "paused";
      row.acts.resume.hidden = r.state !== "paused";
    });
  }

  function renderRooms() {
    const body = $("game-rooms");
    const rooms = (game && game.rooms) || [];
    while (body.children.length > rooms.length) body.lastChild.remove();
    rooms.forEach((r, i) => {
      let tr = body.children[i];
      if (!tr) {
        tr = document.createElement("tr");
        for (let k = 0; k < 5; k++) tr.append(document.createElement(k === 0 ? "th" : "td"));
        tr.firstChild.scope = "row";
        body.append(tr);
      }
      tr.dataset.room = r.room;
      const s = r.snapshot;
      const cells = [r.room, s ? s.owner || "any (external)" : "–", s ? String(s.epoch) : "–", s ? String(s.tick) : "–",
        s ? s.players.map((p) => `${p.id} (${p.score})`).join(", ") : "–"];
      if (r.error) cells[1] += " · moving…";
      cells.forEach((text, k) => { tr.children[k].textContent = text; });
      tr.className = r.error ? "moving" : "";
    });
  }

  function draw() {
    const c = $("game-canvas");
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const room = lobby();
    if (!room || !room.snapshot) return;
    ctx.fillStyle = "#d4a017";
    for (const p of room.snapshot.coins || []) {
      ctx.beginPath();
      ctx.arc(p.x * CELL + CELL / 2, p.y * CELL + CELL / 2, CELL / 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    for (const p of room.snapshot.players) {
      ctx.fillStyle = p.id === "you" ? "#0b5fff" : "#8a94a3";
      ctx.fillRect(p.x * CELL + 2, p.y * CELL + 2, CELL - 4, CELL - 4);
    }
  }

  function render() {
    $("game").hidden = !game;
    if (!game) return;
    const sel = $("game-strategy");
    if (sel.options.length === 0) {
      for (const name of game.strategies) sel.append(new Option(name, name));
      sel.value = game.strategy || "checkpoint";
    }
    const room = lobby();
    $("game-you-room").textContent = room ? room.room : "lobby";
    const me = room && room.snapshot ? room.snapshot.players.find((p) => p.id === "you") : null;
    $("game-you").textContent = me ? `at (${me.x}, ${me.y}), score ${me.score}, ${me.applied} moves applied` : "not in the room yet";
    const owner = room && room.snapshot ? room.snapshot.owner : "";
    for (const b of [$("game-kill-owner"), $("game-pause-owner")]) {
      b.setAttribute("aria-disabled", running() && owner ? "false" : "true");
    }
    if (game.phase === "failed") say(game.error, true);
    else if (game.phase === "starting") say(`Starting a ${game.strategy} game cluster…`);
    else if (game.phase === "off") say("No game cluster: choose a strategy and start one.");
    else if ($("game-status").classList.contains("failed") === false) say(`${game.strategy}: running`);
    renderReplicas();
    renderRooms();
    draw();
  }

  const off = (el) => el.getAttribute("aria-disabled") === "true";

  function onOwner(act) {
    return (ev) => {
      const room = lobby();
      if (off(ev.currentTarget) || !room || !room.snapshot || !room.snapshot.owner) return;
      control("POST", `/play/api/game/replicas/${room.snapshot.owner}/${act}`);
    };
  }

  const move = (mv) => { if (running()) control("POST", "/play/api/game/move", { move: mv }); };
  const keys = { ArrowLeft: "left", ArrowUp: "up", ArrowDown: "down", ArrowRight: "right" };

  document.addEventListener("DOMContentLoaded", () => {
    $("game-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      say("");
      const strategy = $("game-strategy").value;
      // Show the old cluster gone at once, not at the next event.
      if (game) game = { ...game, strategy, phase: "starting", replicas: [], rooms: [] };
      render();
      control("POST", "/play/api/game", { strategy });
    });
    $("game-stop").addEventListener("click", () => control("DELETE", "/play/api/game"));
    $("game-kill-owner").addEventListener("click", onOwner("kill"));
    $("game-pause-owner").addEventListener("click", onOwner("pause"));
    for (const b of $("game-moves").querySelectorAll("button")) {
      b.addEventListener("click", () => move(b.dataset.move));
    }
    $("game-canvas").addEventListener("keydown", (ev) => {
      if (keys[ev.key]) { ev.preventDefault(); move(keys[ev.key]); }
    });
  });
  document.addEventListener("play:state", (ev) => {
    game = ev.detail.game || null;
    render();
  });
})();
