// Open pages of the built book in headless Chromium and report what a reader would see.
// The static pages load MathJax, require.js and the Jupyter widget manager from CDNs; this
// machine has no internet, so those URLs are answered from local npm copies (local_cdn.js) and
// every other outside request is refused and reported.
//
//   node check_pages.js --base URL --out REPORT.json [--shots DIR] [--expect STATES.json] page.html ...
//
// For every page: uncaught JavaScript errors, console errors, failed requests (with their
// resource type), equations typeset, images loaded, solutions folded, widgets rendered. With
// --expect (written by tests/test_book_build.py from the explorables' recomputed states), every
// explorable on the page (div.cnnx, see cnnviz/static/explorable.js) has each control moved
// through all its options -- keyboard on sliders (Home, ArrowRight..., End, ArrowLeft), choices
// on selects, clicks on checkboxes -- and after each move the drawn key and the number in every
// cell are compared with the expected state; the time from the control's input event to the next
// animation frame is recorded for each move.
//
// On every page it also runs the layout pass of check_layout.js (1280 px light and dark, a 390 px
// phone, the page's weight) and stores its offenders under "layout" (--no-layout skips it).
//
// Writes one JSON object to --out (or stdout): {pages: {name: {...}}, blocked: [urls]}.
// Exits 1 when a page has a JavaScript error, a failed script/font/stylesheet request, or an
// explorable that drew something else than expected (layout offenders are reported, not fatal:
// tests/test_book_build.py asserts on them).
const path = require("path");
const fs = require("fs");
const { chromium } = require("playwright-core");
const { routeLocal, CHROMIUM_ARGS } = require("./local_cdn");
const { installTiming, takeTimings } = require("./redraw_timing");
const { measureLayout, trackWeight, waitDrawn } = require("./check_layout");
const { finish, crashed } = require("./report");

const MUST_LOAD = new Set(["script", "font", "stylesheet"]);

function parseArgs(argv) {
  const opts = { pages: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--no-layout") opts["no-layout"] = true;
    else if (a.startsWith("--")) opts[a.slice(2)] = argv[++i];
    else opts.pages.push(a);
  }
  opts.layout = !("no-layout" in opts);
  if (!opts.base || !opts.pages.length) {
    console.error("usage: node check_pages.js --base URL [--out FILE] [--shots DIR] [--expect FILE] [--no-layout] page.html ...");
    process.exit(2);
  }
  return opts;
}

// --- in the page ---------------------------------------------------------------------------

// What explorable number `i` shows now: its key and the text of every cell of every panel.
function drawnState(i) {
  const root = document.querySelectorAll("div.cnnx")[i];
  const panels = {};
  for (const svg of root.querySelectorAll("svg[data-panel]")) {
    const rows = [];
    for (const g of svg.querySelectorAll("g.cnnx-cell[data-r][data-c]")) {
      const r = Number(g.dataset.r), c = Number(g.dataset.c);
      (rows[r] = rows[r] || [])[c] = (g.querySelector("text") || {}).textContent;
    }
    panels[svg.dataset.panel] = rows;
  }
  return { key: root.dataset.key, kind: root.dataset.kind, panels,
           message: !!root.querySelector(".cnnx-message") };
}

// --- in node -------------------------------------------------------------------------------
function sameGrid(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function compare(drawn, expectedKey, spec) {
  const problems = [];
  if (drawn.key !== expectedKey) problems.push(`data-key is ${JSON.stringify(drawn.key)}, expected ${JSON.stringify(expectedKey)}`);
  const want = spec.states[expectedKey];
  if (!want) {
    problems.push(`no recomputed state for key ${JSON.stringify(expectedKey)}`);
    return problems;
  }
  if (want.message !== undefined) {
    if (!drawn.message || Object.keys(drawn.panels).length) problems.push(`key ${expectedKey}: expected the message "${want.message}"`);
    return problems;
  }
  const wantIds = Object.keys(want.panels).sort(), gotIds = Object.keys(drawn.panels).sort();
  if (!sameGrid(wantIds, gotIds)) problems.push(`key ${expectedKey}: panels ${gotIds}, expected ${wantIds}`);
  for (const id of wantIds) {
    if (drawn.panels[id] && !sameGrid(drawn.panels[id], want.panels[id])) {
      problems.push(`key ${expectedKey}: panel ${id} shows ${JSON.stringify(drawn.panels[id])}, ` +
                    `expected ${JSON.stringify(want.panels[id])}`);
    }
  }
  return problems;
}

// The moves that take one control through every option, as [description, target option index].
function sliderMoves(n, start) {
  const moves = [["Home", 0]];
  for (let i = 1; i < n; i++) moves.push(["ArrowRight", i]);
  moves.push(["End", n - 1]);
  if (n > 1) moves.push(["ArrowLeft", n - 2]);
  moves.push(["Home", 0]);
  for (let i = 1; i <= start; i++) moves.push(["ArrowRight", i]);  // back where it started
  return moves;
}

async function sweepExplorable(page, i, spec) {
  const result = { kind: spec.kind, moves: 0, problems: [], frame: [], sync: [] };
  const root = page.locator("div.cnnx").nth(i);
  const first = await page.evaluate(drawnState, i);
  result.initialKey = first.key;
  if (first.kind !== spec.kind) {
    result.problems.push(`explorable ${i} is a ${first.kind}, expected a ${spec.kind}`);
    return result;
  }
  const parts = spec.controls.length ? first.key.split("|") : [];  // a figure has no controls: key ""
  const idx = spec.controls.map((c, j) => c.keys.indexOf(parts[j]));
  if (idx.some((v) => v < 0) || parts.length !== spec.controls.length || (!parts.length && first.key !== "")) {
    result.problems.push(`initial key ${first.key} does not fit the controls ${spec.controls.map((c) => c.name)}`);
    return result;
  }
  result.problems.push(...compare(first, first.key, spec));
  const expectedKey = () => spec.controls.map((c, j) => c.keys[idx[j]]).join("|");
  const check = async (what) => {
    await page.waitForFunction(() => !window.__cnnxTiming.pending, null, { timeout: 5000 }).catch(() => {});
    const drawn = await page.evaluate(drawnState, i);
    result.moves += 1;
    for (const p of compare(drawn, expectedKey(), spec)) result.problems.push(`${what}: ${p}`);
  };
  for (const [j, c] of spec.controls.entries()) {
    const input = root.locator(`[data-control="${c.name}"]`);
    if ((await input.count()) !== 1) {
      result.problems.push(`control ${c.name}: found ${await input.count()} elements with data-control="${c.name}"`);
      continue;
    }
    const n = c.keys.length;
    if (c.kind === "slider") {
      await input.scrollIntoViewIfNeeded();
      await input.focus();
      for (const [key, target] of sliderMoves(n, idx[j])) {
        await page.keyboard.press(key);
        idx[j] = target;
        await check(`${c.name} ${key}`);
      }
    } else if (c.kind === "select") {
      const start = idx[j];
      for (const target of [...Array(n).keys(), start]) {
        await input.selectOption(String(target));
        idx[j] = target;
        await check(`${c.name} = option ${target}`);
      }
    } else if (c.kind === "toggle") {
      for (let k = 0; k < 2; k++) {
        await input.click();
        idx[j] = 1 - idx[j];
        await check(`${c.name} clicked`);
      }
    } else {
      result.problems.push(`control ${c.name}: unknown kind ${c.kind}`);
    }
  }
  const timing = await page.evaluate(takeTimings);
  result.frame = timing.frame;
  result.sync = timing.sync;
  if (result.problems.length > 20) result.problems = result.problems.slice(0, 20).concat([`... ${result.problems.length - 20} more`]);
  return result;
}

async function checkPage(context, base, name, shots, expected, layout) {
  const page = await context.newPage();
  const errors = [], consoleErrors = [], failedRequests = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("requestfailed", (r) => failedRequests.push({ url: r.url(), type: r.resourceType(), failure: (r.failure() || {}).errorText }));
  page.on("response", (r) => {
    if (r.status() >= 400) failedRequests.push({ url: r.url(), type: r.request().resourceType(), status: r.status() });
  });
  await page.addInitScript(installTiming);
  const started = Date.now();
  const weighed = trackWeight(page);
  const response = await page.goto(`${base}/${name}`, { waitUntil: "load" });
  // MathJax's first typesetting pass, every stored widget view rendered, the explorables drawn
  await waitDrawn(page, { explorables: (expected || []).length });
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
      widgetViews: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
      widgetsRendered: document.querySelectorAll(".jupyter-widgets, .widget-subarea > *").length,
      explorablesRendered: document.querySelectorAll("div.cnnx[data-key]").length,
      solutionBodiesVisible: sol.map((s) => {
        const body = s.querySelector("#solution-content, section, p:not(.admonition-title)");
        return body ? visible(body) : null;
      }),
    };
  });
  if (layout) {
    const weight = await weighed(response);
    info.layout = await measureLayout(page, { weight });
  }
  // unfold the first solution and check its body becomes visible
  info.unfolded = null;
  const toggle = await page.$(".solution.dropdown button.toggle-button");
  if (toggle) {
    await toggle.click();
    await page.waitForTimeout(300);
    info.unfolded = await page.evaluate(() => {
      const s = document.querySelector(".solution.dropdown");
      const body = s && s.querySelector("#solution-content, section, p:not(.admonition-title)");
      return !!(body && body.checkVisibility({ visibilityProperty: true, opacityProperty: true }));
    });
  }
  if (shots) await page.screenshot({ path: path.join(shots, name.replace(/[\/]/g, "_") + ".png"), fullPage: false });
  info.explorables = [];
  if (expected) {
    const n = await page.locator("div.cnnx").count();
    if (n !== expected.length) {
      info.explorables.push({ kind: "?", moves: 0, frame: [], sync: [],
        problems: [`the page draws ${n} explorables, its widget state holds ${expected.length}`] });
    }
    for (let i = 0; i < Math.min(n, expected.length); i++) {
      info.explorables.push(await sweepExplorable(page, i, expected[i]));
    }
  }
  info.seconds = (Date.now() - started) / 1000;
  info.errors = errors;
  info.consoleErrors = consoleErrors;
  info.failedRequests = failedRequests;
  await page.close();
  return info;
}

(async () => {
  const opts = parseArgs(process.argv.slice(2));
  const expected = opts.expect ? JSON.parse(fs.readFileSync(opts.expect, "utf-8")).pages : {};
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
  // pydata-sphinx-theme keeps the reader's choice in localStorage: start every page in light mode
  await context.addInitScript(() => { localStorage.setItem("mode", "light"); localStorage.setItem("theme", "light"); });
  const blocked = new Set();
  await routeLocal(context, opts.base, blocked);
  const result = { pages: {}, blocked: [] };
  let bad = 0;
  for (const name of opts.pages) {
    const info = await checkPage(context, opts.base, name, opts.shots, opts.expect ? (expected[name] || []) : null,
                                 opts.layout);
    result.pages[name] = info;
    const failed = info.failedRequests.filter((r) => MUST_LOAD.has(r.type));
    const wrong = info.explorables.filter((e) => e.problems.length);
    if (info.errors.length || failed.length || wrong.length) {
      bad += 1;
      console.error(`${name}: ${info.errors.length} JavaScript errors, ${failed.length} failed script/font/stylesheet requests, ` +
                    `${wrong.length} explorables drawing something unexpected`);
    }
  }
  result.blocked = Array.from(blocked);
  await browser.close();
  finish(result, opts.out, bad);
})().catch(crashed);
