// The explorables' browser view (cnnviz/static/explorable.js) in headless Chromium, against a
// stand-in for the widget model: every control moved through every option (from the keyboard for
// sliders), the drawn numbers compared with the states Python computed, hover / click / arrow keys
// on the cells, actions with and without a kernel, a phone-wide screen and the dark theme.
//
// usage: node check_view.js <models.json> <report.json>
//   models.json: [{kind, title, controls, actions, values, states, needs_kernel}, ...]
// Exits 1 with a list of failures; writes redraw times (ms, control input → drawn) to report.json.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const { chromium } = require("playwright-core");

const STATIC = path.resolve(__dirname, "../../cnnviz/static");
const [modelsPath, reportPath] = process.argv.slice(2);
const models = JSON.parse(fs.readFileSync(modelsPath, "utf8"));
// the page holds the states as one JSON text; the checks read them parsed
const parsedStates = models.map((m) => (typeof m.states === "string" ? JSON.parse(m.states) : m.states));

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/explorable.css"></head><body><div id="host"></div>
<script type="module">
import view from "/explorable.js";
const data = await (await fetch("/model.json?i=" + new URLSearchParams(location.search).get("i"))).json();
const handlers = {};
window.sent = [];
window.keysOutside = 0;
document.addEventListener("keydown", () => { window.keysOutside += 1; });
window.model = {
  get: (k) => data[k], set: (k, v) => { data[k] = v; }, save_changes() { window.saved = (window.saved || 0) + 1; },
  on(ev, f) { (handlers[ev] ||= []).push(f); }, off() {},
  send(m) { window.sent.push(m); },
};
window.emit = (ev, arg) => (handlers[ev] || []).forEach((f) => f(arg));
window.replace = (k, v) => { data[k] = v; window.emit("change:" + k); };
view.render({ model: window.model, el: document.getElementById("host") });
window.ready = true;
</script></body></html>`;

function serve() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url, "http://x");
      if (url.pathname === "/") { res.setHeader("Content-Type", "text/html"); return res.end(PAGE); }
      if (url.pathname === "/model.json") {
        res.setHeader("Content-Type", "application/json");
        return res.end(JSON.stringify(models[Number(url.searchParams.get("i"))]));
      }
      const file = path.join(STATIC, path.basename(url.pathname));
      if (!fs.existsSync(file)) { res.statusCode = 404; return res.end(); }
      res.setHeader("Content-Type", file.endsWith(".js") ? "text/javascript" : "text/css");
      fs.createReadStream(file).pipe(res);
    }).listen(0, "127.0.0.1", () => resolve(server));
  });
}

const keyPart = (v) => (v === true ? "true" : v === false ? "false" : String(v));
const stripTags = (s) => String(s).replace(/<\/?(b|i|sub|sup|code|br)>/g, "");

async function drawn(page) {
  return page.evaluate(() => {
    const root = document.querySelector(".cnnx");
    const panels = {};
    for (const svg of root.querySelectorAll("svg[data-panel]")) {
      const cells = {};
      for (const g of svg.querySelectorAll("g.cnnx-cell")) cells[`${g.dataset.r}:${g.dataset.c}`] = g.querySelector("text").textContent;
      panels[svg.dataset.panel] = cells;
    }
    const msg = root.querySelector(".cnnx-message");
    return { key: root.dataset.key, panels, message: msg ? msg.textContent : null,
             caption: root.querySelector(".cnnx-caption").textContent };
  });
}

function compare(model, seen, failures, where) {
  const state = parsedStates[models.indexOf(model)][seen.key];
  if (!state) { failures.push(`${where}: drew key ${seen.key}, which has no state`); return; }
  if (state.message) {
    if (seen.message !== stripTags(state.message)) failures.push(`${where}: message ${JSON.stringify(seen.message)}`);
    return;
  }
  if (seen.caption !== stripTags(state.caption || "")) failures.push(`${where}: caption ${JSON.stringify(seen.caption)}`);
  for (const p of state.panels) {
    const cells = seen.panels[p.id];
    if (!cells) { failures.push(`${where}: panel ${p.id} not drawn`); continue; }
    for (let r = 0; r < p.rows; r++) for (let c = 0; c < p.cols; c++) {
      if (cells[`${r}:${c}`] !== p.text[r][c]) {
        failures.push(`${where}: panel ${p.id} cell (${r}, ${c}) drew ${JSON.stringify(cells[`${r}:${c}`])}, state says ${JSON.stringify(p.text[r][c])}`);
        return;
      }
    }
  }
}

async function timedInput(page, act) {
  // time from the control's input event to the next frame the browser paints
  await page.evaluate(() => { window.t0 = null; });
  await act();
  return page.evaluate(() => new Promise((res) => requestAnimationFrame(() => res(window.t0 === null ? null : performance.now() - window.t0))));
}

(async () => {
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const failures = [];
  const times = {};
  for (let i = 0; i < models.length; i++) {
    const model = models[i];
    const where0 = model.kind;
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("pageerror", (e) => failures.push(`${where0}: page error ${e}`));
    page.on("console", (m) => { if (m.type() === "error") failures.push(`${where0}: console error ${m.text()}`); });
    await page.goto(`${base}?i=${i}`);
    await page.waitForFunction(() => window.ready === true);
    // time each input from the moment the event is dispatched
    await page.evaluate(() => {
      for (const el of document.querySelectorAll("[data-control]")) {
        el.addEventListener(el.tagName === "SELECT" || el.type === "checkbox" ? "change" : "input",
          () => { window.t0 = performance.now(); }, { capture: true });
      }
    });
    const defaults = model.controls.map((c) => keyPart(model.values[c.name])).join("|");
    let seen = await drawn(page);
    if (seen.key !== defaults) failures.push(`${where0}: first drawn key ${seen.key}, expected ${defaults}`);
    compare(model, seen, failures, `${where0} [${seen.key}]`);
    times[model.kind] = [];

    // every control through every option, then back to its default
    for (const spec of model.controls) {
      const sel = `[data-control="${spec.name}"]`;
      const expectKey = async (idx, how) => {
        const values = Object.assign({}, await page.evaluate(() => window.model.get("values")));
        seen = await drawn(page);
        const want = model.controls.map((c) => keyPart(c.name === spec.name ? spec.options[idx] : values[c.name])).join("|");
        if (seen.key !== want) failures.push(`${where0}: ${spec.name} → ${spec.labels[idx]} (${how}) drew ${seen.key}, expected ${want}`);
        compare(model, seen, failures, `${where0} [${seen.key}]`);
      };
      if (spec.kind === "slider") {
        await page.focus(sel);
        times[model.kind].push(await timedInput(page, () => page.keyboard.press("Home")));
        await expectKey(0, "Home key");
        for (let k = 1; k < spec.options.length; k++) {
          times[model.kind].push(await timedInput(page, () => page.keyboard.press("ArrowRight")));
          await expectKey(k, "ArrowRight");
        }
        const d = spec.keys.indexOf(keyPart(model.values[spec.name]));
        await page.evaluate(([s, v]) => { const el = document.querySelector(s); el.value = v; el.dispatchEvent(new Event("input", { bubbles: true })); }, [sel, String(d)]);
        await expectKey(d, "reset");
      } else if (spec.kind === "select") {
        for (let k = 0; k < spec.options.length; k++) {
          times[model.kind].push(await timedInput(page, () => page.selectOption(sel, String(k))));
          await expectKey(k, "select");
        }
        await page.selectOption(sel, String(spec.keys.indexOf(keyPart(model.values[spec.name]))));
      } else {
        const was = await page.isChecked(sel);
        await page.focus(sel);
        times[model.kind].push(await timedInput(page, () => page.keyboard.press("Space")));
        await expectKey(spec.options.indexOf(!was), "Space");
        await page.click(sel);
        await expectKey(spec.options.indexOf(was), "click");
      }
    }
    if (await page.evaluate(() => window.keysOutside) !== 0) {
      failures.push(`${where0}: key presses on the controls reached the page (JupyterLab would take them as shortcuts)`);
    }

    // hover, click and the arrow keys follow a cell's links
    const state = parsedStates[i][defaults];
    const linked = state && state.links ? Object.keys(state.links) : [];
    if (linked.length) {
      const id = linked[linked.length - 1];
      const [pid, r, c] = id.split(":");
      const cell = `svg[data-panel="${pid}"] g.cnnx-cell[data-r="${r}"][data-c="${c}"]`;
      await page.hover(cell);
      const info = await page.evaluate(() => document.querySelector(".cnnx-info").textContent);
      const lk = typeof state.links[id] === "string" ? state.links[state.links[id]] : state.links[id];
      if (info !== stripTags(lk.text)) failures.push(`${where0}: hovering ${id} shows ${JSON.stringify(info)}`);
      const lit = await page.evaluate(() => Array.from(document.querySelectorAll("g.cnnx-cell.hl")).map((g) => g.dataset.id).sort());
      const want = lk.cells.filter((x) => x !== id).sort();
      if (!want.every((x) => lit.includes(x))) failures.push(`${where0}: hovering ${id} lit ${lit}, expected ${want}`);
      await page.click(cell);
      await page.mouse.move(1, 1);
      const followed = await page.evaluate(() => document.querySelector(".cnnx").dataset.followed);
      if (followed !== id) failures.push(`${where0}: clicking ${id} followed ${followed}`);
      await page.focus(`svg[data-panel="${pid}"]`);
      for (const k of ["ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown"]) await page.keyboard.press(k);
      const after = await page.evaluate(() => document.querySelector(".cnnx").dataset.followed);
      if (!after || !after.startsWith(pid + ":")) failures.push(`${where0}: arrow keys on panel ${pid} left the follow at ${after}`);
    }

    // actions: disabled without a kernel (and say why), live once one answers
    if ((model.actions || []).length) {
      const disabled = await page.evaluate(() => Array.from(document.querySelectorAll("button[data-action]")).every((b) => b.disabled));
      const note = await page.evaluate(() => document.querySelector(".cnnx-status").textContent);
      if (!disabled || note !== model.needs_kernel) failures.push(`${where0}: without a kernel, actions enabled=${!disabled}, note ${JSON.stringify(note)}`);
      if (!(await page.evaluate(() => window.sent.some((m) => m.type === "hello")))) failures.push(`${where0}: never asked for a kernel`);
      await page.evaluate(() => window.emit("msg:custom", { type: "kernel" }));
      const name = model.actions[0].name;
      await page.click(`button[data-action="${name}"]`);
      const sent = await page.evaluate(() => window.sent.filter((m) => m.type === "action"));
      if (sent.length !== 1 || sent[0].name !== name) failures.push(`${where0}: action click sent ${JSON.stringify(sent)}`);
    }
    // the kernel replaces the states: the view redraws from the new ones
    await page.evaluate(() => {
      const raw = window.model.get("states");
      const states = JSON.parse(typeof raw === "string" ? raw : JSON.stringify(raw));
      const key = document.querySelector(".cnnx").dataset.key;
      states[key] = { message: "replaced by the kernel" };
      window.replace("states", JSON.stringify(states));
    });
    seen = await drawn(page);
    if (seen.message !== "replaced by the kernel") failures.push(`${where0}: no redraw when the states changed`);

    // a phone-wide screen: nothing wider than the screen; the dark theme changes the colours
    await page.goto(`${base}?i=${i}`);
    await page.setViewportSize({ width: 390, height: 800 });
    await page.waitForFunction(() => window.ready === true);
    const overflow = await page.evaluate(() => {
      const root = document.querySelector(".cnnx");
      const wide = Array.from(root.querySelectorAll("svg, .cnnx-control, .cnnx-action"))
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1);
      return { scroll: document.scrollingElement.scrollWidth, wide: wide.length };
    });
    if (overflow.scroll > 391 || overflow.wide) failures.push(`${where0}: at 390 px, page width ${overflow.scroll}, ${overflow.wide} element(s) overflow`);
    const light = await page.evaluate(() => getComputedStyle(document.querySelector(".cnnx")).backgroundColor);
    await page.evaluate(() => document.documentElement.setAttribute("data-theme", "dark"));
    const dark = await page.evaluate(() => getComputedStyle(document.querySelector(".cnnx")).backgroundColor);
    if (light === dark) failures.push(`${where0}: the dark theme does not change the background (${light})`);
    await page.close();
  }
  await browser.close();
  server.close();
  const median = (a) => {
    a = a.filter((x) => x !== null); const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : null; };
  const report = {};
  for (const [k, v0] of Object.entries(times)) {
    const v = v0.filter((x) => x !== null);
    report[k] = { median_ms: median(v), max_ms: Math.max(...v), n: v.length };
  }
  fs.writeFileSync(reportPath, JSON.stringify(report, null, 1));
  if (failures.length) {
    console.log(failures.slice(0, 40).join("\n"));
    console.log(`${failures.length} failure(s)`);
    process.exit(1);
  }
  console.log(`${models.length} explorable view(s) checked`);
})().catch((e) => { console.error(e); process.exit(2); });
