// A Binder reader's session, in headless Chromium against a running JupyterLab: open a chapter,
// read it before running anything, Run All from the menu, then use every explorable with the
// keyboard and the mouse while the kernel is attached.
//
//   node check_lab.js --lab URL/lab?token=T --out REPORT.json [--shots DIR] [--reopen NOTEBOOK.ipynb]
//                     [--follow NOTEBOOK.ipynb] NOTEBOOK.ipynb=CELLS,EXPLORABLES ...
//
// CELLS is the notebook's number of cells (the page is ready when they are all there), EXPLORABLES
// the number of explorables its outputs show. Reports, per
// notebook: markdown cells whose rendered text still shows MyST markup ({cite}, {doc}, ```{exercise}
// ...), citations or references that jupyterlab-myst marks "Not Found", links to other chapters
// (links into the server's files) and whether each names a notebook the server has, the titles of the folded solutions,
// outputs that show a widget's repr or "Error displaying widget" before and after the run,
// error outputs after the run, the Run All time, and for each explorable (div.cnnx, see
// cnnviz/static/explorable.js) every control moved once by keyboard and once by mouse: whether
// the drawing changed (its data-key), whether JupyterLab kept the same active cell (arrow keys
// must not move through the notebook), the time from the input event to the next frame, and the
// time from an action button (recomputed in the kernel) to the new drawing. The --reopen notebook
// is then saved and JupyterLab reloaded: its explorables must come back (no "model not found").
// In the --follow notebook, the first link to another chapter is clicked: that chapter must open
// in JupyterLab (its tab current, its title shown).
// Exits 1 when something a reader would see as broken was found.
const path = require("path");
const { chromium } = require("playwright-core");
const { CHROMIUM_ARGS } = require("./local_cdn");
const { installTiming, takeTimings } = require("./redraw_timing");
const { finish, crashed } = require("./report");

const RAW_MYST = /\{(cite|cite:[a-z]+|doc|ref|numref|eq|term|download|exercise|solution|admonition|note|warning|figure)\}|^\s*(```|:::)\s*\{/m;
const WIDGET_REPR = /\b(VBox|HBox|Box|IntSlider|FloatSlider|Dropdown|Output|Button|AnyWidget)\(children=|\b(IntSlider|FloatSlider|Dropdown|ToggleButtons)\(value=|Error displaying widget|model not found|object at 0x[0-9a-f]+/;

function parseArgs(argv) {
  const opts = { notebooks: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) opts[a.slice(2)] = argv[++i];
    else {
      const [name, counts] = a.split("=");
      const [cells, explorables] = counts.split(",").map(Number);
      opts.notebooks.push({ name, cells, explorables });
    }
  }
  if (!opts.lab || !opts.notebooks.length) {
    console.error("usage: node check_lab.js --lab URL/lab?token=T [--out FILE] [--shots DIR] NOTEBOOK.ipynb=CELLS ...");
    process.exit(2);
  }
  return opts;
}


// What the reader sees in the notebook now: rendered markdown with raw MyST, outputs with a
// widget repr, error outputs, prompts.
function readNotebook([rawSrc, reprSrc]) {
  const raw = new RegExp(rawSrc, "m"), repr = new RegExp(reprSrc);
  const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
  const cells = Array.from(panel.querySelectorAll(".jp-Notebook .jp-Cell"));
  const rawMyst = [], reprs = [], errors = [], notFound = [], chapterLinks = [], solutions = [];
  let unrendered = 0;
  cells.forEach((cell, i) => {
    if (cell.classList.contains("jp-MarkdownCell")) {
      const area = cell.querySelector(".jp-InputArea");
      const shown = area ? Array.from(area.children).filter((c) =>
        !c.classList.contains("jp-InputArea-editor") && !c.classList.contains("jp-InputArea-prompt")) : [];
      const text = shown.map((c) => c.innerText || c.textContent).join("\n");
      if (!(cell.querySelector(".jp-InputArea .myst") || cell.querySelector(".jp-InputPlaceholder"))) unrendered += 1;
      if (raw.test(text)) rawMyst.push({ cell: i, text: text.match(raw)[0], near: text.slice(0, 120) });
      // jupyterlab-myst marks a citation or reference it cannot resolve (title "Citation Not Found")
      for (const el of shown.flatMap((c) => [c, ...c.querySelectorAll("*")])) {
        const title = el.getAttribute("title") || "";
        if (/not found/i.test(title)) notFound.push({ cell: i, title, text: (el.textContent || "").trim().slice(0, 80) });
      }
      // sphinx-exercise's gated solutions read "Start of Solution to Exercise N" in jupyterlab-myst
      const start = text.match(/Start of Solution[^\n]*/);
      if (start) solutions.push(start[0].trim());
      const marked = text.match(/\b(Citation|Reference|Cross-reference) Not Found\b/i);
      if (marked) notFound.push({ cell: i, title: marked[0], text: text.slice(0, 80) });
      for (const c of shown) {
        for (const a of c.querySelectorAll("a[href]")) {
          const href = a.getAttribute("href");
          // a link into the server's files (where jupyterlab-myst points a relative link): a chapter
          const local = /\/files\//.test(href) || !/^([a-z][a-z0-9+.-]*:|#|\/\/)/i.test(href);
          if (local) chapterLinks.push({ cell: i, text: a.textContent.trim(), href });
        }
        for (const s of c.querySelectorAll("summary")) {
          if (/Solution/.test(s.textContent)) solutions.push(s.textContent.trim());
        }
      }
    }
    for (const out of cell.querySelectorAll(".jp-OutputArea-output")) {
      const text = out.textContent || "";
      if (repr.test(text)) reprs.push({ cell: i, text: text.slice(0, 160) });
      const mime = out.getAttribute("data-mime-type") || "";
      if (mime === "application/vnd.jupyter.stderr" && /Traceback|\b\w*Error\b/.test(text)) {
        errors.push({ cell: i, text: text.slice(0, 400) });
      }
    }
  });
  const prompts = Array.from(panel.querySelectorAll(".jp-CodeCell .jp-InputPrompt")).map((p) => p.textContent.trim());
  const indicator = document.querySelector(".jp-Notebook-ExecutionIndicator");
  return { cells: cells.length, markdownCells: panel.querySelectorAll(".jp-MarkdownCell").length,
           unrendered, rawMyst, reprs, errors, notFound, chapterLinks, solutions,
           running: prompts.filter((p) => p.includes("*")).length,
           kernel: indicator ? indicator.dataset.status : null };
}

function activeCell() {
  const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
  const cells = Array.from(panel.querySelectorAll(".jp-Notebook .jp-Cell"));
  return cells.findIndex((c) => c.classList.contains("jp-mod-active"));
}

function explorableState(i) {
  const root = document.querySelectorAll("div.cnnx")[i];
  const controls = Array.from(root.querySelectorAll("[data-control]")).map((el) => ({
    name: el.dataset.control,
    kind: el.tagName === "SELECT" ? "select" : el.type === "checkbox" ? "toggle" : "slider",
    index: el.type === "checkbox" ? (el.checked ? 1 : 0) : Number(el.value),
    count: el.tagName === "SELECT" ? el.options.length : el.type === "checkbox" ? 2 : Number(el.max) + 1,
    disabled: el.disabled,
  }));
  const texts = Array.from(root.querySelectorAll("g.cnnx-cell text")).map((t) => t.textContent).join(",");
  const actions = Array.from(root.querySelectorAll("button[data-action]")).map((b) => ({
    name: b.dataset.action, disabled: b.disabled,
    needsText: !!root.querySelector(`[data-action-field="${b.dataset.action}"]`) }));
  const status = root.querySelector(".cnnx-status");
  return { key: root.dataset.key, kind: root.dataset.kind, kernel: root.dataset.kernel, controls, actions,
           texts, status: status ? status.textContent : "" };
}

async function waitForKeyChange(page, i, before, timeout = 5000) {
  return page.waitForFunction(([i, before]) => document.querySelectorAll("div.cnnx")[i].dataset.key !== before,
    [i, before], { timeout }).then(() => true, () => false);
}

async function useExplorable(page, i) {
  const root = page.locator("div.cnnx").nth(i);
  await root.scrollIntoViewIfNeeded();
  const first = await page.evaluate(explorableState, i);
  const out = { kind: first.kind, kernel: first.kernel, moves: [], actions: [], problems: [] };
  if (first.kernel !== "yes") out.problems.push("the explorable does not see the kernel (its actions stay disabled)");
  for (const c of first.controls) {
    if (c.disabled || c.count < 2) continue;
    const input = root.locator(`[data-control="${c.name}"]`);
    for (const how of ["keyboard", "mouse"]) {
      const now = await page.evaluate(explorableState, i);
      const cur = now.controls.find((d) => d.name === c.name);
      const up = cur.index < cur.count - 1;
      let cellBefore = await page.evaluate(activeCell);
      if (how === "keyboard") {
        await input.focus();  // focusing a control makes its cell the active one, as a click would
        cellBefore = await page.evaluate(activeCell);
        if (c.kind === "toggle") await page.keyboard.press("Space");
        else await page.keyboard.press(up ? (c.kind === "select" ? "ArrowDown" : "ArrowRight") : (c.kind === "select" ? "ArrowUp" : "ArrowLeft"));
      } else if (c.kind === "slider") {
        const box = await input.boundingBox();
        const target = up ? cur.count - 1 : 0;
        // the middle of the target option's stretch of the track
        const f = (target + 0.5) / cur.count;
        await page.mouse.click(box.x + box.width * f, box.y + box.height / 2);
      } else if (c.kind === "toggle") {
        await input.click();
      } else {
        await input.click();  // open it as a reader would, then choose (a native list: by value)
        await page.keyboard.press("Escape");
        await input.selectOption(String(up ? cur.index + 1 : cur.index - 1));
      }
      const changed = await waitForKeyChange(page, i, now.key);
      await page.waitForFunction(() => !window.__cnnxTiming.pending, null, { timeout: 5000 }).catch(() => {});
      const after = await page.evaluate(explorableState, i);
      const cellAfter = await page.evaluate(activeCell);
      const move = { control: c.name, how, from: now.key, to: after.key, changed, activeCellKept: cellAfter === cellBefore };
      out.moves.push(move);
      if (!changed) out.problems.push(`${c.name} (${how}): the drawing did not change (key ${now.key})`);
      if (how === "keyboard" && cellAfter !== cellBefore) {
        out.problems.push(`${c.name} (keyboard): JupyterLab moved from cell ${cellBefore} to ${cellAfter}`);
      }
    }
  }
  // an action recomputed in the kernel: the drawing must change
  for (const a of first.actions) {
    if (a.needsText || a.disabled) continue;
    const before = await page.evaluate(explorableState, i);
    const t0 = Date.now();
    await root.locator(`button[data-action="${a.name}"]`).click();
    const redrawn = await page.waitForFunction(([i, texts]) => {
      const root = document.querySelectorAll("div.cnnx")[i];
      return Array.from(root.querySelectorAll("g.cnnx-cell text")).map((t) => t.textContent).join(",") !== texts;
    }, [i, before.texts], { timeout: 30000 }).then(() => true, () => false);
    const ms = Date.now() - t0;
    const after = await page.evaluate(explorableState, i);
    out.actions.push({ action: a.name, redrawn, ms, status: after.status });
    if (!redrawn) out.problems.push(`action ${a.name}: nothing was redrawn within 30 s (status: ${after.status})`);
    break;  // one action per explorable is enough to see the kernel answer
  }
  const timing = await page.evaluate(takeTimings);
  Object.assign(out, timing);
  return out;
}

// Wait for jupyterlab-myst to render every markdown cell (its .myst view replaces an empty
// placeholder seconds after the cells appear; a folded cell shows its input placeholder instead):
// read earlier, an empty page shows nothing wrong.
async function waitForMarkdown(page) {
  await page.waitForFunction(() => {
    const cells = document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownCell");
    return cells.length && Array.from(cells).every((c) =>
      c.querySelector(".jp-InputArea .myst") || c.querySelector(".jp-InputPlaceholder"));
  }, null, { timeout: 90000 }).catch(() => {});
  await page.waitForTimeout(300);
}

// The server path of a chapter link as jupyterlab-myst writes it (…/files/PATH.ipynb?_xsrf=…, or
// a relative PATH.ipynb), and whether the server has that notebook.
function linkPath(href, notebook) {
  const url = new URL(href, "http://host/files/" + notebook);
  const i = url.pathname.indexOf("/files/");
  return decodeURIComponent(i >= 0 ? url.pathname.slice(i + "/files/".length) : url.pathname.replace(/^\//, ""));
}

async function checkLinks(lab, nb, links) {
  const [base, query] = lab.split("/lab?");
  const token = new URLSearchParams(query).get("token");
  const out = [];
  const seen = new Map();
  for (const l of links) {
    const p = linkPath(l.href, nb.name);
    if (!seen.has(p)) {
      const res = await fetch(`${base}/api/contents/${p.split("/").map(encodeURIComponent).join("/")}?content=0`,
                              { headers: { Authorization: `token ${token}` } });
      seen.set(p, res.status === 200 ? (await res.json()).type : `HTTP ${res.status}`);
    }
    out.push({ ...l, path: p, found: seen.get(p) });
  }
  return out;
}

// Click the first link to another chapter and see that chapter open (its tab current, its title
// shown); then shut its kernel down again.
async function followLink(page, lab, nb) {
  const link = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownCell a[href*='/files/']").first();
  if (!(await link.count())) return { opened: false, problem: "no link to another chapter" };
  const href = await link.getAttribute("href");
  const target = linkPath(href, nb.name).split("/").pop();
  await link.scrollIntoViewIfNeeded();
  await link.click();
  const opened = await page.waitForFunction((target) => {
    const tab = document.querySelector(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel");
    const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
    return tab && tab.textContent === target && panel && panel.querySelector(".jp-MarkdownCell h1");
  }, target, { timeout: 60000 }).then(() => true, () => false);
  const title = opened ? await page.evaluate(() =>
    document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownCell h1").textContent.replace("¶", "").trim()) : null;
  const [base, query] = lab.split("/lab?");
  const token = new URLSearchParams(query).get("token");
  const sessions = await (await fetch(`${base}/api/sessions`, { headers: { Authorization: `token ${token}` } })).json();
  for (const s of sessions.filter((s) => s.path.endsWith(target))) {
    await fetch(`${base}/api/sessions/${s.id}`, { method: "DELETE", headers: { Authorization: `token ${token}` } });
  }
  return { href, target, opened, title };
}

async function checkNotebook(context, lab, nb, shots, reopen, follow) {
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.addInitScript(installTiming);
  const [base, query] = lab.split("/lab?");
  const result = { notebook: nb.name, problems: [] };
  const t0 = Date.now();
  await page.goto(`${base}/lab/tree/${nb.name}?reset&${query}`);  // reset: this notebook only
  await page.waitForFunction((n) => document.querySelectorAll(".jp-NotebookPanel .jp-Notebook .jp-Cell").length >= n,
    nb.cells, { timeout: 120000 });
  await page.waitForFunction(() => {
    const e = document.querySelector(".jp-Notebook-ExecutionIndicator");
    return e && e.dataset.status === "idle";
  }, null, { timeout: 120000 });
  await waitForMarkdown(page);  // MyST rendering finishes seconds after the cells appear
  result.openSeconds = (Date.now() - t0) / 1000;
  const src = [RAW_MYST.source, WIDGET_REPR.source];
  result.beforeRun = await page.evaluate(readNotebook, src);
  result.beforeRun.chapterLinks = await checkLinks(lab, nb, result.beforeRun.chapterLinks);
  if (shots) await page.screenshot({ path: path.join(shots, nb.name + ".before.png") });

  // Run All, from the menu
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
  const started = Date.now();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^Run All Cells$/ }).click();
  await page.waitForFunction(() => document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt").length &&
    Array.from(document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt")).some((p) => p.textContent.includes("*")),
    null, { timeout: 10000 }).catch(() => {});
  await page.waitForFunction(() => {
    const e = document.querySelector(".jp-Notebook-ExecutionIndicator");
    const running = Array.from(document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt")).some((p) => p.textContent.includes("*"));
    return !running && e && e.dataset.status === "idle";
  }, null, { timeout: 600000 });
  result.runAllSeconds = (Date.now() - started) / 1000;
  await page.waitForTimeout(1000);  // widget views attach after their output arrives
  result.afterRun = await page.evaluate(readNotebook, src);
  result.explorables = [];
  await page.waitForFunction((n) => document.querySelectorAll("div.cnnx").length >= n, nb.explorables,
    { timeout: 30000 }).catch(() => {});
  const n = await page.locator("div.cnnx").count();
  if (n !== nb.explorables) result.problems.push(`after Run All ${n} explorables are drawn, the notebook has ${nb.explorables}`);
  for (let i = 0; i < n; i++) result.explorables.push(await useExplorable(page, i));
  await page.waitForTimeout(500);
  result.afterUse = await page.evaluate(readNotebook, src);
  if (shots) await page.screenshot({ path: path.join(shots, nb.name + ".after.png") });

  result.pageErrors = pageErrors;
  if (reopen) await saveAndReopen(page, nb, n, src, result);
  if (follow) result.followed = await followLink(page, lab, nb);

  const b = result.beforeRun, a = result.afterRun, u = result.afterUse;
  if (b.cells < nb.cells) result.problems.push(`only ${b.cells} of ${nb.cells} cells shown`);
  if (b.unrendered) result.problems.push(`${b.unrendered} markdown cells were not rendered`);
  for (const m of b.rawMyst) result.problems.push(`cell ${m.cell}: raw MyST "${m.text}" in the rendered markdown`);
  for (const m of b.notFound) result.problems.push(`cell ${m.cell}: "${m.title}" at "${m.text}"`);
  for (const l of b.chapterLinks.filter((l) => l.found !== "notebook")) {
    result.problems.push(`cell ${l.cell}: the link "${l.text}" (${l.path}) opens no notebook (${l.found})`);
  }
  for (const s of b.solutions.filter((s) => !/^Solution to Exercise\b/.test(s))) result.problems.push(`a solution titled "${s}"`);
  if (result.followed && !result.followed.opened) {
    result.problems.push(`clicking the link to ${result.followed.target || "another chapter"} did not open it`);
  }
  for (const r of b.reprs) result.problems.push(`cell ${r.cell}, before Run All: ${r.text}`);
  for (const r of a.reprs.concat(u.reprs)) result.problems.push(`cell ${r.cell}, after Run All: ${r.text}`);
  for (const e of a.errors.concat(u.errors)) result.problems.push(`cell ${e.cell}: error output ${e.text}`);
  for (const e of result.explorables) result.problems.push(...e.problems.map((p) => `${e.kind}: ${p}`));
  if (result.reopened) {
    for (const r of result.reopened.reprs) result.problems.push(`cell ${r.cell}, saved and reopened: ${r.text}`);
    if (result.reopened.explorables !== n) {
      result.problems.push(`saved and reopened: ${result.reopened.explorables} of ${n} explorables drawn`);
    }
  }
  for (const e of pageErrors) result.problems.push(`JavaScript error: ${e.slice(0, 300)}`);
  // free the kernel before the next chapter
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Kernel$/ }).click();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^Shut Down Kernel$/ }).click();
  await page.locator(".jp-Dialog .jp-mod-accept").click({ timeout: 3000 }).catch(() => {});
  await page.waitForTimeout(500);
  await page.close();
  return result;
}

// Save, reload JupyterLab (the kernel keeps running) and see the explorables again
async function saveAndReopen(page, nb, n, src, result) {
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^File$/ }).click();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^Save Notebook$/ }).click();
  await page.waitForTimeout(1500);
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll(".jp-NotebookPanel .jp-Notebook .jp-Cell").length >= n,
    nb.cells, { timeout: 120000 });
  await page.waitForFunction((n) => document.querySelectorAll("div.cnnx").length >= n, n, { timeout: 30000 }).catch(() => {});
  await waitForMarkdown(page);
  result.reopened = await page.evaluate(readNotebook, src);
  result.reopened.explorables = await page.locator("div.cnnx").count();
}

(async () => {
  const opts = parseArgs(process.argv.slice(2));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const report = { notebooks: {} };
  let bad = 0;
  for (const nb of opts.notebooks) {
    let res;
    try {
      res = await checkNotebook(context, opts.lab, nb, opts.shots, opts.reopen === nb.name, opts.follow === nb.name);
    } catch (err) {
      res = { notebook: nb.name, problems: [`the check stopped: ${String(err).slice(0, 600)}`] };
    }
    report.notebooks[nb.name] = res;
    if (res.problems.length) {
      bad += 1;
      console.error(`${nb.name}: ${res.problems.length} problems:\n  ${res.problems.slice(0, 15).join("\n  ")}`);
    }
  }
  await browser.close();
  finish(report, opts.out, bad);
})().catch(crashed);
