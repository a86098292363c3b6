// Open pages of the built book in headless Chromium and report what a reader would see.
// The static pages load MathJax, require.js and the Jupyter widget manager from CDNs; this
// machine has no internet, so those URLs are answered from the local npm copies below.
//
//   node check_pages.js BASE_URL SCREENSHOT_DIR page1.html [page2.html ...]
//
// Prints one JSON object: {pages: {name: {...}}, blocked: [urls that were not served]}.
const path = require("path");
const fs = require("fs");
const { chromium } = require("playwright-core");

const NM = path.join(__dirname, "node_modules");
const LOCAL = [
  // [pattern, function(url) -> local file]
  [/\/mathjax@3[^/]*\/es5\/(.*)$/, (m) => path.join(NM, "mathjax", "es5", m[1])],
  [/\/require\.js\/[^/]+\/require(\.min)?\.js$/, () => path.join(NM, "requirejs", "require.js")],
  [/\/@jupyter-widgets\/html-manager@[^/]*\/dist\/(.*)$/, (m) => path.join(NM, "@jupyter-widgets", "html-manager", "dist", m[1])],
];

function localFile(url) {
  for (const [re, fn] of LOCAL) {
    const m = url.match(re);
    if (m) return fn(m);
  }
  return null;
}

(async () => {
  const [base, shots, ...pages] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const blocked = new Set();
  await context.route("**/*", async (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) {
      if (!url.split("?")[0].endsWith(".html")) return route.continue();
      // The pages pin CDN scripts with subresource-integrity hashes of the CDN's minified
      // builds; the npm copies served below are the same versions but not the same bytes.
      const response = await route.fetch();
      const body = (await response.text()).replace(/\s+integrity="[^"]*"/g, "");
      return route.fulfill({ response, body });
    }
    const file = localFile(url.split("?")[0]);
    if (file && fs.existsSync(file)) {
      const type = file.endsWith(".js") ? "application/javascript" : undefined;
      return route.fulfill({ path: file, contentType: type });
    }
    blocked.add(url);
    return route.abort();
  });
  const result = { pages: {}, blocked: [] };
  for (const name of pages) {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/${name}`, { waitUntil: "load" });
    // MathJax: wait for its first typesetting pass, if the page loads it
    await page.waitForFunction(
      () => !document.querySelector('script[src*="mathjax"]') ||
            (window.MathJax && window.MathJax.startup && window.MathJax.startup.document &&
             window.MathJax.startup.promise), null, { timeout: 20000 }).catch(() => {});
    await page.evaluate(() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise).catch(() => {});
    // widgets: give the embed manager time to render, if the page has widget state
    const hasWidgetState = await page.evaluate(() => !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]'));
    if (hasWidgetState) {
      await page.waitForSelector(".jupyter-widgets, .widget-slider, .widget-inline-hbox", { timeout: 20000 }).catch(() => {});
    }
    const info = await page.evaluate(() => {
      const imgs = Array.from(document.querySelectorAll("main img"));
      const sol = Array.from(document.querySelectorAll(".solution.dropdown, details.solution, .solution-dropdown, div.solution"));
      const visible = (el) => el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
      return {
        title: document.title,
        mathSource: document.querySelectorAll(".math, span.math, div.math").length,
        mathRendered: document.querySelectorAll("mjx-container").length,
        mathErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
        images: imgs.length,
        brokenImages: imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.getAttribute("src")),
        solutions: sol.length,
        widgetState: !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]'),
        widgetsRendered: document.querySelectorAll(".jupyter-widgets").length,
        solutionBodiesVisible: sol.map((s) => {
          const body = s.querySelector("#solution-content, section, p:not(.admonition-title)");
          return body ? visible(body) : null;
        }),
      };
    });
    // unfold the first solution and check its body becomes visible
    info.unfolded = null;
    const toggle = await page.$(".solution.dropdown button.toggle-button");
    if (toggle) {
      await toggle.click();
      await page.waitForTimeout(500);
      info.unfolded = await page.evaluate(() => {
        const s = document.querySelector(".solution.dropdown");
        const body = s && s.querySelector("#solution-content, section, p:not(.admonition-title)");
        return !!(body && body.checkVisibility({ visibilityProperty: true, opacityProperty: true }));
      });
    }
    info.errors = errors;
    if (shots) await page.screenshot({ path: path.join(shots, name.replace(/[\/]/g, "_") + ".png"), fullPage: false });
    result.pages[name] = info;
    await page.close();
  }
  result.blocked = Array.from(blocked);
  await browser.close();
  console.log(JSON.stringify(result));
})().catch((e) => { console.error(e); process.exit(1); });
