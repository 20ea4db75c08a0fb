/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core):
 * it loads from the control API, shows the row of a live tunnel session, and
 * leaves a screenshot in test-artifacts/dashboard.png.
 */
import assert from "node:assert/strict";
import { startTunnelClient, startTunnelServer, tempDir, writeConfig } from "./_harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: hasChromium
    ? "dashboard: Chromium shows the rows of a running tunnel"
    : "dashboard: Chromium shows the rows of a running tunnel (NOT RUN: no /usr/bin/chromium; apt-get install chromium)",
  ignore: !hasChromium,
  async fn() {
    const { chromium } = await import("playwright-core");
    await using dir = await tempDir();
    const file = await writeConfig(
      dir.path,
      "s.yaml",
      `
server:
  listen: "127.0.0.1:0"
  http_bind: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: laptop, token: "dashboard-token-1" }]
admin: { listen: "127.0.0.1:0" }
`,
    );
    const s = await startTunnelServer(["-c", file]);
    await using _s = s.proc;
    const admin = await s.proc.listeningAddr("admin");
    await using c = startTunnelClient(s, "dashboard-token-1", [
      "--name",
      "dash-client",
      "--map",
      "web=http:127.0.0.1:9@dash.test",
    ]);
    await c.waitForEvent("mapping_ready");
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://${admin}/`);
      await page.waitForSelector("#sessions td:has-text('dash-client')", { timeout: 10_000 });
      const sessionRow = await page.locator("#sessions tbody tr").first().innerText();
      assert.match(sessionRow, /dash-client/);
      assert.match(sessionRow, /laptop/);
      const mappings = await page.locator("#mappings tbody").innerText();
      assert.match(mappings, /http:dash\.test/);
      const listeners = await page.locator("#listeners tbody").innerText();
      assert.match(listeners, /tunnel/);
      assert.equal(await page.locator("#error").innerText(), "");
      await Deno.mkdir("test-artifacts", { recursive: true });
      await page.screenshot({ path: "test-artifacts/dashboard.png", fullPage: true });
    } finally {
      await browser.close();
    }
  },
});
