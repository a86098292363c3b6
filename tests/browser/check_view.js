// The explorables' browser view (cnnviz/static/explorable.js) in headless Chromium, against a
// stand-in for the widget model, for explorables and fixed-state figures:
// - every control moved through every option (from the keyboard for sliders), the drawn numbers
//   compared with the states Python computed, the redraw timed (control input → next frame);
// - every drawn state: each cell's text inside its cell, titles inside their panel and typeset
//   (<sub>/<sup> as tspans, never raw tags), the legend = the state's legend and every legend entry
//   something the panels draw (and everything drawn that has a wording in the legend);
// - in an article column (690 px in a 1280 px window) and on a 390 px phone: the smallest cell text
//   as shown (CSS px), nothing wider than the screen, a panel too wide scrolling in its own box;
// - in the light and the dark theme: the contrast of every cell's text on its fill (rgba fills
//   blended over the background, times the cell's fill-opacity), muted text apart;
// - hover on every panel with linked cells, click to pin, arrow keys, actions with and without a
//   kernel, a redraw when the kernel replaces the states.
//
// usage: node check_view.js <models.json> <report.json> [--shots DIR]
//   models.json: {legend: {key: default wording}, models: [{kind, title, controls, actions, values,
//                 states (one JSON text), needs_kernel}, ...]}
// Exits 1 with a list of failures; report.json holds, per model, the redraw times and the measures.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const { chromium } = require("playwright-core");

const STATIC = path.resolve(__dirname, "../../cnnviz/static");
const args = process.argv.slice(2);
const [modelsPath, reportPath] = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--shots");
const shots = args.includes("--shots") ? args[args.indexOf("--shots") + 1] : null;
const input = JSON.parse(fs.readFileSync(modelsPath, "utf8"));
const models = input.models;
const LEGEND = input.legend;
// the page holds the states as one JSON text; the checks read them parsed
const parsedStates = models.map((m) => (typeof m.states === "string" ? JSON.parse(m.states) : m.states));
const COLUMN = 690;  // the book's article column at 1280 px

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { margin: 16px; background: #fff; } html[data-theme="dark"] body { background: #121212; }
#host { max-width: ${COLUMN}px; }</style>
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
const linkOf = (state, id) => (typeof state.links[id] === "string" ? state.links[state.links[id]] : state.links[id]);

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
             caption: root.querySelector(".cnnx-caption").textContent,
             legend: Array.from(root.querySelectorAll(".cnnx-legend .cnnx-key")).map((k) => k.dataset.key) };
  });
}

function compare(i, seen, failures, where) {
  const state = parsedStates[i][seen.key];
  if (!state) { failures.push(`${where}: drew key ${seen.key}, which has no state`); return; }
  if (state.message) {
    if (seen.message !== stripTags(state.message)) failures.push(`${where}: message ${JSON.stringify(seen.message)}`);
    return;
  }
  if (seen.caption !== stripTags(state.caption || "")) failures.push(`${where}: caption ${JSON.stringify(seen.caption)}`);
  const legend = (state.legend || []).map(([k]) => k);
  if (JSON.stringify(seen.legend) !== JSON.stringify(legend)) failures.push(`${where}: legend ${seen.legend}, state says ${legend}`);
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

// In the page: how the current drawing reads.  Text fitting, titles, legend against what is drawn,
// text size as shown, contrast of every cell's text on its fill.
function measure(legendWording) {
  const root = document.querySelector(".cnnx");
  const parse = (s) => {
    const m = /rgba?\(([^)]+)\)/.exec(s);
    if (!m) return null;
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1 };
  };
  const over = (top, a, bottom) => ({ r: top.r * a + bottom.r * (1 - a), g: top.g * a + bottom.g * (1 - a),
                                      b: top.b * a + bottom.b * (1 - a) });
  const lum = (c) => {
    const f = (x) => { x /= 255; return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bg = parse(getComputedStyle(root).backgroundColor);
  const out = { overflow: [], clipped: [], rawTags: [], shifted: {}, minTextPx: Infinity, minContrast: Infinity,
                minMutedContrast: Infinity, lowContrast: [], drawnKeys: [], legendKeys: [], cells: 0 };
  const keys = new Set();
  for (const svg of root.querySelectorAll("svg[data-panel]")) {
    const pid = svg.dataset.panel;
    const vb = svg.viewBox.baseVal;
    const scale = svg.getBoundingClientRect().width / vb.width;
    for (const t of svg.querySelectorAll("text.cnnx-title, text.cnnx-subtitle, text.cnnx-axis, text.cnnx-op")) {
      const b = t.getBBox();
      if (b.x < -0.5 || b.x + b.width > vb.width + 0.5 || b.y < -0.5) out.clipped.push(`${pid}: "${t.textContent}" ${b.x.toFixed(1)}..${(b.x + b.width).toFixed(1)} of ${vb.width}`);
      if (/<\/?(sub|sup|b|i)>/.test(t.textContent)) out.rawTags.push(`${pid}: ${t.textContent}`);
    }
    for (const g of svg.querySelectorAll("g.cnnx-cell")) {
      const rect = g.querySelector("rect"), text = g.querySelector("text");
      out.cells += 1;
      for (const cls of g.classList) if (cls in legendWording) keys.add(cls);
      const rs = getComputedStyle(rect);
      const fill = parse(rs.fill);
      const sign = /--cnnx-(pos|neg)-rgb/.exec(rect.getAttribute("style") || "");
      if (sign) keys.add(`fill.${sign[1]}`);
      if (!text.textContent) continue;
      const rb = rect.getBBox(), tb = text.getBBox();
      if (tb.x < rb.x - 0.01 || tb.x + tb.width > rb.x + rb.width + 0.01 || tb.y < rb.y - 0.01 || tb.y + tb.height > rb.y + rb.height + 0.01) {
        out.overflow.push(`${pid}:${g.dataset.r}:${g.dataset.c} "${text.textContent}" is ${tb.width.toFixed(1)}×${tb.height.toFixed(1)} in a ${rb.width}×${rb.height} cell`);
      }
      const ts = getComputedStyle(text);
      out.minTextPx = Math.min(out.minTextPx, parseFloat(ts.fontSize) * scale);
      const under = fill ? over(fill, fill.a * parseFloat(rs.fillOpacity), bg) : bg;
      const c = ratio(parse(ts.fill), under);
      const muted = ["pad", "dim", "zero", "dead"].some((k) => g.classList.contains(k));
      if (muted) out.minMutedContrast = Math.min(out.minMutedContrast, c);
      else out.minContrast = Math.min(out.minContrast, c);
      if (c < (muted ? 3 : 4.5)) out.lowContrast.push(`${pid}:${g.dataset.r}:${g.dataset.c} "${text.textContent}" ${c.toFixed(2)}:1 (${ts.fill} on ${rs.fill} × ${rs.fillOpacity})`);
    }
    for (const w of svg.querySelectorAll("g.cnnx-windows rect.cnnx-window")) {
      const cls = Array.from(w.classList).filter((c) => c !== "cnnx-window");
      if (cls.length) cls.forEach((c) => keys.add(`window.${c}`)); else keys.add("window");
    }
    // a typeset title holds its sub- and superscripts in smaller, shifted tspans
    out.shifted[pid] = !!svg.querySelector("text.cnnx-title tspan[dy][font-size]");
  }
  out.drawnKeys = Array.from(keys);
  out.legendKeys = Array.from(root.querySelectorAll(".cnnx-legend .cnnx-key")).map((k) => k.dataset.key);
  out.pageWidth = document.scrollingElement.scrollWidth;
  out.wide = Array.from(root.querySelectorAll(".cnnx-pbox, .cnnx-control, .cnnx-action, .cnnx-legend"))
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).length;
  out.scrollBoxes = Array.from(root.querySelectorAll(".cnnx-pbox")).filter((b) => b.scrollWidth > b.clientWidth + 1).length;
  return out;
}

function checkMeasure(m, state, failures, where, { minPx, dark }) {
  if (!state || state.message) return;
  for (const o of m.overflow.slice(0, 3)) failures.push(`${where}: text overflows its cell: ${o}`);
  for (const o of m.clipped.slice(0, 3)) failures.push(`${where}: text outside its panel: ${o}`);
  for (const o of m.rawTags.slice(0, 3)) failures.push(`${where}: raw tags in a title: ${o}`);
  for (const p of state.panels) {
    if (/<su[bp]>/.test(p.title) && !m.shifted[p.id]) failures.push(`${where}: title "${p.title}" is not typeset`);
  }
  if (m.cells && m.minTextPx < minPx - 0.05) failures.push(`${where}: cell text ${m.minTextPx.toFixed(1)} px as shown (at least ${minPx})`);
  for (const o of m.lowContrast.slice(0, 3)) failures.push(`${where}${dark ? " (dark)" : ""}: low contrast ${o}`);
  const follow = new Set(["follow.cell", "follow.cells", "follow.windows"]);
  for (const k of m.legendKeys) {
    if (!follow.has(k) && !m.drawnKeys.includes(k)) failures.push(`${where}: the legend shows ${k}, which nothing draws`);
  }
  for (const k of m.drawnKeys) {
    if (LEGEND[k] && !m.legendKeys.includes(k)) failures.push(`${where}: ${k} is drawn but not in the legend`);
  }
  if (state.links && Object.keys(state.links).length && !m.legendKeys.includes("follow.cell")) {
    failures.push(`${where}: cells can be followed but the legend does not say how they are marked`);
  }
}

async function timedInput(page, act) {
  // time from the control's input event to the next frame the browser paints
  await page.evaluate(() => { window.t0 = null; });
  await act();
  return page.evaluate(() => new Promise((res) => requestAnimationFrame(() => res(window.t0 === null ? null : performance.now() - window.t0))));
}

async function open(page, base, i, width, dark) {
  await page.setViewportSize({ width, height: 900 });
  await page.goto(`${base}?i=${i}`);
  await page.waitForFunction(() => window.ready === true);
  if (dark) await page.evaluate(() => document.documentElement.setAttribute("data-theme", "dark"));
}

(async () => {
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const failures = [];
  const report = {};
  for (let i = 0; i < models.length; i++) {
    const model = models[i];
    const name = model.name || model.kind;
    const rep = (report[name] = { kind: model.kind, times: [], minTextPx: {}, minContrast: {}, minMutedContrast: {},
                                  hovered: [], states: 0 });
    const page = await browser.newPage();
    page.on("pageerror", (e) => failures.push(`${name}: page error ${e}`));
    page.on("console", (m) => { if (m.type() === "error") failures.push(`${name}: console error ${m.text()}`); });
    await open(page, base, i, 1280, false);
    // time each input from the moment the event is dispatched
    await page.evaluate(() => {
      for (const el of document.querySelectorAll("[data-control]")) {
        el.addEventListener(el.tagName === "SELECT" || el.type === "checkbox" ? "change" : "input",
          () => { window.t0 = performance.now(); }, { capture: true });
      }
    });
    const defaults = model.controls.map((c) => keyPart(model.values[c.name])).join("|");
    const look = async (where, opts) => {
      const seen = await drawn(page);
      compare(i, seen, failures, `${where} [${seen.key}]`);
      const m = await page.evaluate(measure, LEGEND);
      checkMeasure(m, parsedStates[i][seen.key], failures, `${where} [${seen.key}]`, opts);
      rep.states += 1;
      return { seen, m };
    };
    const desktop = { minPx: 11, dark: false };
    let { seen, m } = await look(name, desktop);
    if (seen.key !== defaults) failures.push(`${name}: first drawn key ${seen.key}, expected ${defaults}`);
    rep.minTextPx.desktop = m.minTextPx;
    rep.minContrast.light = m.minContrast;
    rep.minMutedContrast.light = m.minMutedContrast;
    const track = (mm) => {
      rep.minTextPx.desktop = Math.min(rep.minTextPx.desktop, mm.minTextPx);
      rep.minContrast.light = Math.min(rep.minContrast.light, mm.minContrast);
      rep.minMutedContrast.light = Math.min(rep.minMutedContrast.light, mm.minMutedContrast);
    };
    if (shots) await page.locator(".cnnx").screenshot({ path: path.join(shots, `${name}.desktop.png`) });

    // every control through every option, then back to its default
    for (const spec of model.controls) {
      const sel = `[data-control="${spec.name}"]`;
      const expectKey = async (idx, how) => {
        const values = Object.assign({}, await page.evaluate(() => window.model.get("values")));
        const got = await look(name, desktop);
        track(got.m);
        const want = model.controls.map((c) => keyPart(c.name === spec.name ? spec.options[idx] : values[c.name])).join("|");
        if (got.seen.key !== want) failures.push(`${name}: ${spec.name} → ${spec.labels[idx]} (${how}) drew ${got.seen.key}, expected ${want}`);
      };
      if (spec.kind === "slider") {
        await page.focus(sel);
        rep.times.push(await timedInput(page, () => page.keyboard.press("Home")));
        await expectKey(0, "Home key");
        for (let k = 1; k < spec.options.length; k++) {
          rep.times.push(await timedInput(page, () => page.keyboard.press("ArrowRight")));
          await expectKey(k, "ArrowRight");
        }
        const d = spec.keys.indexOf(keyPart(model.values[spec.name]));
        await page.evaluate(([s, v]) => { const el = document.querySelector(s); el.value = v; el.dispatchEvent(new Event("input", { bubbles: true })); }, [sel, String(d)]);
        await expectKey(d, "reset");
      } else if (spec.kind === "select") {
        for (let k = 0; k < spec.options.length; k++) {
          rep.times.push(await timedInput(page, () => page.selectOption(sel, String(k))));
          await expectKey(k, "select");
        }
        await page.selectOption(sel, String(spec.keys.indexOf(keyPart(model.values[spec.name]))));
      } else {
        const was = await page.isChecked(sel);
        await page.focus(sel);
        rep.times.push(await timedInput(page, () => page.keyboard.press("Space")));
        await expectKey(spec.options.indexOf(!was), "Space");
        await page.click(sel);
        await expectKey(spec.options.indexOf(was), "click");
      }
    }
    if (await page.evaluate(() => window.keysOutside) !== 0) {
      failures.push(`${name}: key presses on the controls reached the page (JupyterLab would take them as shortcuts)`);
    }

    // hover on every panel with linked cells, click to pin, arrow keys
    const state = parsedStates[i][defaults];
    const links = state && state.links ? state.links : {};
    const panelIds = state && state.panels ? state.panels.map((p) => p.id) : [];
    for (const pid of panelIds) {
      const ids = Object.keys(links).filter((id) => id.startsWith(pid + ":"));
      if (!ids.length) continue;
      const id = ids[ids.length - 1];
      const [, r, c] = id.split(":");
      const cell = `svg[data-panel="${pid}"] g.cnnx-cell[data-r="${r}"][data-c="${c}"]`;
      await page.locator(cell).scrollIntoViewIfNeeded();
      await page.hover(cell);
      const got = await page.evaluate(() => ({ info: document.querySelector(".cnnx-info").textContent,
        followed: document.querySelector(".cnnx").dataset.followed,
        lit: Array.from(document.querySelectorAll("g.cnnx-cell.linked")).map((g) => g.dataset.id) }));
      const lk = linkOf(state, id);
      if (got.followed !== id || !got.info.startsWith(stripTags(lk.text))) failures.push(`${name}: hovering ${id} follows ${got.followed}, shows ${JSON.stringify(got.info)}`);
      const want = lk.cells.filter((x) => x !== id && panelIds.includes(x.split(":")[0]));
      if (!want.every((x) => got.lit.includes(x))) failures.push(`${name}: hovering ${id} lit ${got.lit}, expected ${want}`);
      rep.hovered.push(pid);
    }
    const linked = Object.keys(links);
    if (linked.length && !state.fixed) {
      const id = linked[linked.length - 1];
      const [pid, r, c] = id.split(":");
      await page.click(`svg[data-panel="${pid}"] g.cnnx-cell[data-r="${r}"][data-c="${c}"]`);
      await page.mouse.move(1, 1);
      const followed = await page.evaluate(() => document.querySelector(".cnnx").dataset.followed);
      if (followed !== id) failures.push(`${name}: clicking ${id} followed ${followed}`);
      await page.focus(`svg[data-panel="${pid}"]`);
      const trail = [];
      for (const k of ["ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown"]) {
        await page.keyboard.press(k);
        trail.push(await page.evaluate(() => document.querySelector(".cnnx").dataset.followed));
      }
      // the cells the arrow keys can reach: linked ones and those with a fuller value to read
      const readable = await page.evaluate(([p, ids]) => Array.from(document.querySelectorAll(`svg[data-panel="${p}"] g.cnnx-cell`))
        .filter((g) => ids.includes(g.dataset.id) || g.dataset.exact !== undefined).length, [pid, linked]);
      if (!trail.every((t) => t && t.startsWith(pid + ":")) || (readable > 1 && new Set([id, ...trail]).size < 2)) {
        failures.push(`${name}: arrow keys on panel ${pid} went ${[id, ...trail].join(" → ")}`);
      }
    }
    if (state && state.fixed && state.focus) {
      const followed = await page.evaluate(() => { document.querySelector(".cnnx-panels").dispatchEvent(new MouseEvent("mouseleave")); return document.querySelector(".cnnx").dataset.followed; });
      if (followed !== state.focus) failures.push(`${name}: the figure follows ${followed}, not ${state.focus}`);
    }

    // actions: disabled without a kernel (and say why), live once one answers
    if ((model.actions || []).length) {
      const disabled = await page.evaluate(() => Array.from(document.querySelectorAll("button[data-action]")).every((b) => b.disabled));
      const note = await page.evaluate(() => document.querySelector(".cnnx-status").textContent);
      if (!disabled || note !== model.needs_kernel) failures.push(`${name}: without a kernel, actions enabled=${!disabled}, note ${JSON.stringify(note)}`);
      await page.evaluate(() => window.emit("msg:custom", { type: "kernel" }));
      const act = model.actions[0].name;
      await page.click(`button[data-action="${act}"]`);
      const sent = await page.evaluate(() => window.sent.filter((m) => m.type === "action"));
      if (sent.length !== 1 || sent[0].name !== act) failures.push(`${name}: action click sent ${JSON.stringify(sent)}`);
    }
    if (!(await page.evaluate(() => window.sent.some((m) => m.type === "hello")))) failures.push(`${name}: never asked for a kernel`);
    // the kernel replaces the states: the view redraws from the new ones
    await page.evaluate(() => {
      const raw = window.model.get("states");
      const states = JSON.parse(typeof raw === "string" ? raw : JSON.stringify(raw));
      const key = document.querySelector(".cnnx").dataset.key;
      states[key] = { message: "replaced by the kernel" };
      window.replace("states", JSON.stringify(states));
    });
    seen = await drawn(page);
    if (seen.message !== "replaced by the kernel") failures.push(`${name}: no redraw when the states changed`);

    // the dark theme: designed colours, the same contrast rules
    await open(page, base, i, 1280, true);
    const darkBg = await page.evaluate(() => getComputedStyle(document.querySelector(".cnnx")).backgroundColor);
    ({ m } = await look(`${name} dark`, { minPx: 11, dark: true }));
    rep.minContrast.dark = m.minContrast;
    rep.minMutedContrast.dark = m.minMutedContrast;
    if (darkBg === "rgb(255, 255, 255)" || darkBg === "rgba(0, 0, 0, 0)") failures.push(`${name}: the dark theme keeps a light background (${darkBg})`);
    if (shots) await page.locator(".cnnx").screenshot({ path: path.join(shots, `${name}.dark.png`) });
    // JupyterLab's dark theme says so on the body: the same colours
    const labBg = await page.evaluate(() => {
      document.documentElement.removeAttribute("data-theme");
      document.body.setAttribute("data-jp-theme-light", "false");
      return getComputedStyle(document.querySelector(".cnnx")).backgroundColor;
    });
    if (labBg !== darkBg) failures.push(`${name}: JupyterLab's dark theme gives ${labBg}, the book's ${darkBg}`);

    // a phone: panels wrap, one too wide scrolls in its own box, the page never scrolls sideways
    await open(page, base, i, 390, false);
    ({ m } = await look(`${name} 390 px`, { minPx: 9, dark: false }));
    rep.minTextPx.phone = m.minTextPx;
    rep.scrollBoxes = m.scrollBoxes;
    if (m.pageWidth > 390 || m.wide) failures.push(`${name}: at 390 px, page width ${m.pageWidth}, ${m.wide} element(s) wider than the screen`);
    if (shots) await page.screenshot({ path: path.join(shots, `${name}.phone.png`), fullPage: true });
    await page.close();
  }
  await browser.close();
  server.close();
  const median = (a) => { const s = a.filter((x) => x !== null).sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : null; };
  for (const rep of Object.values(report)) {
    const t = rep.times.filter((x) => x !== null);
    Object.assign(rep, { median_ms: median(t), max_ms: t.length ? Math.max(...t) : null, n: t.length });
    delete rep.times;
  }
  fs.writeFileSync(reportPath, JSON.stringify(report, null, 1));
  if (failures.length) {
    console.log(failures.slice(0, 60).join("\n"));
    console.log(`${failures.length} failure(s)`);
    process.exit(1);
  }
  console.log(`${models.length} view(s) checked`);
})().catch((e) => { console.error(e); process.exit(2); });
