// The browser of the end-to-end tests: Debian's Chromium (CHROMIUM
// overrides its path), headless, at 1280×800, in a fresh profile.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

// launch starts the browser; close stops it and removes its profile.
export async function launch(name) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `statelab-${name}-e2e-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}
