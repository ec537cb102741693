// Captures the app for the docs: desktop (1280×800) and phone (375×667), light and dark.
//
//   node tests/web/screenshots.mjs
//
// Starts its own server, makes a short history of changes so the activity list and the trend
// chart have something to show, and writes PNGs to docs/screenshots/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, apiClient, ROOT } from './harness.mjs';

const OUT = join(ROOT, 'docs/screenshots');
const SHOTS = [
  { name: 'desktop-light', viewport: { width: 1280, height: 800 }, colorScheme: 'light' },
  { name: 'desktop-dark', viewport: { width: 1280, height: 800 }, colorScheme: 'dark' },
  { name: 'phone-light', viewport: { width: 375, height: 667 }, colorScheme: 'light', mobile: true },
  { name: 'phone-dark', viewport: { width: 375, height: 667 }, colorScheme: 'dark', mobile: true },
];
// A walk with some ups and downs, ending on a friendly number.
const HISTORY = [25, 10, -5, 100, 40, -60, 25, 250, -100, 75, 10, -30, 500, -200, 120, 60, -45, 15, 1, 1, 1, 100, -10, 5, 250, -50, 10, 100, 1, 40];

const server = await startServer();
let browser;
try {
  const api = apiClient(server.base);
  for (const step of HISTORY) {
    await (step > 0 ? api.increment(step) : api.decrement(-step));
  }
  browser = await launchBrowser();
  mkdirSync(OUT, { recursive: true });
  for (const shot of SHOTS) {
    const context = await browser.newContext({
      viewport: shot.viewport,
      deviceScaleFactor: 2,
      isMobile: Boolean(shot.mobile),
      hasTouch: Boolean(shot.mobile),
      colorScheme: shot.colorScheme,
      // A still picture: no change animation caught half-way.
      reducedMotion: 'reduce',
    });
    const page = await context.newPage();
    await page.goto(server.base);
    await page.locator('#link[data-state="live"]').waitFor();
    await page.locator('#changes li').nth(19).waitFor();
    await page.screenshot({ path: join(OUT, `${shot.name}.png`) });
    await context.close();
    console.log(`wrote docs/screenshots/${shot.name}.png`);
  }
} finally {
  await browser?.close();
  await server.stop();
}
