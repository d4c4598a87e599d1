// End-to-end test of the playground's game view in a real browser
// (Debian's Chromium, headless, playwright-core). Run by
// TestGameViewInBrowser (game_e2e_test.go), which serves the playground:
//
//   node game.test.mjs http://127.0.0.1:PORT/
//
// Under checkpoint it starts a game cluster, moves in the lobby, kills the
// lobby's owner with "Kill the owner of lobby" and waits for the room to
// answer from another replica at a higher epoch, and for the log to say
// so. Under memory it waits for the log to say the room started over. It
// fails on console errors of the dashboard.
import { launch } from "./browser.mjs";
import assert from "node:assert/strict";

const base = process.argv[2];
if (!base) {
  console.error("usage: node game.test.mjs URL");
  process.exit(2);
}
const t0 = Date.now();
function step(msg) { console.log(`game.e2e: ${((Date.now() - t0) / 1000).toFixed(1)}s ${msg}`); }

const { context, close } = await launch("game");
const problems = [];

// lobby returns the lobby row's cells: owner, epoch, tick, players.
async function lobby(page) {
  const cells = await page.locator('#game-rooms tr[data-room="lobby"] td').allTextContents();
  return { owner: cells[0] || "", epoch: Number(cells[1]), tick: Number(cells[2]), players: cells[3] || "" };
}

async function until(what, f, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function startGame(page, strategy) {
  await page.getByLabel("Game strategy").selectOption(strategy);
  await page.getByRole("button", { name: "Start game cluster" }).click();
  const room = await until(`a ${strategy} lobby with an owner`, async () => {
    if ((await page.locator("#game-status").textContent()) !== `${strategy}: running`) return null;
    const l = await lobby(page);
    return /^r\d+$/.test(l.owner) ? l : null;
  }, 90000);
  step(`${strategy}: lobby owned by ${room.owner} at epoch ${room.epoch}`);
  return room;
}

async function play(page) {
  // Move until the room applied a move (a 503 while the cluster settles
  // refuses one; press again, as a person would).
  await until("my moves applied", async () => {
    await page.getByRole("button", { name: "Move right", exact: true }).click();
    await page.waitForTimeout(300);
    return /[1-9]\d* moves applied/.test(await page.locator("#game-you").textContent());
  }, 30000);
  await until("me in the room", async () => (await lobby(page)).players.includes("you ("), 20000);
}

try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20000);
  page.on("console", (m) => {
    const where = m.location().url || "";
    if (m.type() === "error" && !where.includes("/shop/")) problems.push(`${m.text()} (${where})`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(base);
  await page.locator("#game").waitFor();
  step("game view shown");

  // checkpoint: the room moves and resumes at a higher epoch.
  const before = await startGame(page, "checkpoint");
  await play(page);
  await page.getByRole("button", { name: "Kill the owner of lobby" }).click();
  await page.locator(`#game-replicas li[data-id="${before.owner}"] .badge`, { hasText: "down" }).waitFor();
  const after = await until("the lobby on another replica", async () => {
    const l = await lobby(page);
    return /^r\d+$/.test(l.owner) && l.owner !== before.owner && l.epoch > before.epoch ? l : null;
  }, 60000);
  step(`checkpoint: lobby moved ${before.owner} → ${after.owner}, epoch ${before.epoch} → ${after.epoch}`);
  await page.locator("#log li", { hasText: `room lobby moved from ${before.owner} to ${after.owner}` }).waitFor();

  // memory: the room starts over on its new owner.
  const mem = await startGame(page, "memory");
  await play(page);
  await page.getByRole("button", { name: "Kill the owner of lobby" }).click();
  await page.locator("#log li", { hasText: "room lobby started over" }).waitFor({ timeout: 60000 });
  step(`memory: lobby started over after ${mem.owner} died`);

  // Keyboard: arrow keys on the focused arena move "you".
  const applied = async () => Number(((await page.locator("#game-you").textContent()).match(/(\d+) moves applied/) || [0, 0])[1]);
  const n = await applied();
  await page.locator("#game-canvas").focus();
  // A replica that has not yet seen the owner die answers 503 for a moment:
  // press again, as a person would.
  await until("the arrow key's move", async () => {
    await page.keyboard.press("ArrowUp");
    await page.waitForTimeout(400);
    return (await applied()) > n;
  }, 30000);

  assert.deepEqual(problems, [], "console errors on the dashboard");
  step("passed");
} finally {
  await close();
}
