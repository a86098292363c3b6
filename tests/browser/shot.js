// dev helper: node shot.js BASE OUTDIR page.html [width] [dark]
const path = require("path");
const { chromium } = require("playwright-core");
const { routeLocal, CHROMIUM_ARGS } = require("./local_cdn");
(async () => {
  const [base, out, page, width = "1280", dark = ""] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const ctx = await browser.newContext({ viewport: { width: Number(width), height: 900 }, colorScheme: dark ? "dark" : "light" });
  await routeLocal(ctx, base, new Set());
  const p = await ctx.newPage();
  if (dark) await p.addInitScript(() => localStorage.setItem("theme", "dark"));
  await p.goto(base + page, { waitUntil: "load" });
  await p.waitForTimeout(2500);
  const name = page.replace(/\W+/g, "_") + "_" + width + (dark ? "_dark" : "");
  await p.screenshot({ path: path.join(out, name + ".png"), fullPage: true });
  console.log(name);
  await browser.close();
})();
