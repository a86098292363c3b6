// Does every page read well? One pass per page in headless Chromium: at 1280 px in light mode,
// the same page switched to dark mode, then narrowed to a 390 px phone (light and dark), and the
// page's weight. Reports every offender, by check:
//
//   code-clipped        a code cell, printed output or code block wider than its box at 1280 px
//                       (scrollWidth > clientWidth): a line longer than the 88 characters the
//                       column holds (_static/book.css)
//   equation-clipped    a display equation wider than its box at 1280 px, or cut at its top or bottom
//   box-clipped         anything else that scrolls or is cut off at 1280 px (a table, a widget)
//   sticks-out          something wider than the column at 1280 px that does not scroll
//   figure-shrunk       a figure shown below 80 % of its drawn width at 1280 px (a PNG drawn
//                       940 px wide in a 752 px column); drawn width: an SVG figure's width
//                       attribute, an image's width attribute or its natural width
//   figure-text-small   text of an SVG figure (cnnviz.show_figure) below 11 px as shown at 1280 px
//   dark-bright-figure  in dark mode, a figure whose box is mostly bright (the screenshot of its box
//                       sampled: over 35 % of its pixels with a relative luminance above 0.5)
//   text-contrast       in light or dark mode, an SVG figure's text or a coloured part of an
//                       equation (\color, \class{cnn-max}) below 4.5:1 against what is behind it
//   phone-overflow      at 390 px the page scrolls sideways, or something sticks out of the screen
//                       or is cut off at its box's edge without scrolling inside its own box
//   phone-figure-shrunk at 390 px a figure shown below 80 % of its drawn width (it should scroll
//                       inside its box instead)
//   page-weight         the page over 400 KB: its HTML gzipped (with its stored widget state and
//                       inline SVG figures) plus the images of its own it loads (_images/); the
//                       theme's scripts, styles, fonts and MathJax, shared by every page and
//                       cached, do not count
//
// Standalone, on one or more pages of a served build (prints the offenders, writes
// OUTDIR/layout-report.json and a screenshot per page and mode into OUTDIR):
//
//   node tests/browser/check_layout.js http://127.0.0.1:8000 OUTDIR book/05_tiny_cnn_backward.html
//
// tests/browser/check_pages.js runs the same pass (measureLayout) on each page it opens, so the
// test suite loads every page once; tests/test_book_build.py asserts on the report.
const path = require("path");
const fs = require("fs");
const zlib = require("zlib");
const { chromium } = require("playwright-core");
const { routeLocal, CHROMIUM_ARGS } = require("./local_cdn");

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const LIMITS = {
  minShown: 0.8,            // a figure is shown at >= 80 % of its drawn width
  minFigureTextPx: 11,      // SVG figure text as shown at 1280 px
  minContrast: 4.5,         // WCAG AA for text
  brightLuminance: 0.5,     // a pixel this bright or more counts as bright
  maxBrightFraction: 0.35,  // a figure box in dark mode with more bright pixels is a bright box
  maxPageKB: 400,           // HTML gzip + page-specific images
};

// --- in the page --------------------------------------------------------------------------------
// Everything here runs inside page.evaluate, so it carries its own functions.
function inPage([kind, limits]) {
  const article = document.querySelector("main .bd-article") || document.querySelector("main") || document.body;
  const visible = (el) => el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    const cls = typeof el.className === "string" ? el.className : (el.getAttribute("class") || "");
    if (cls) s += "." + cls.trim().split(/\s+/).slice(0, 3).join(".");
    return s;
  };
  // where on the page: the nearest heading above the element
  const headings = Array.from(article.querySelectorAll("h1, h2, h3, h4"));
  const section = (el) => {
    let last = null;
    for (const h of headings) {
      if (h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) last = h;
      else break;
    }
    return last ? last.textContent.replace(/[#¶]/g, "").trim().slice(0, 70) : "(top of the page)";
  };
  const offender = (check, el, detail) => ({ check, section: section(el), element: describe(el), detail });
  const scrollsX = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const clipsX = (el) => ["hidden", "clip"].includes(getComputedStyle(el).overflowX);
  // how far what is drawn inside a box reaches past its right edge (MathJax's hidden copy for
  // screen readers, mjx-assistive-mml, is clipped on purpose and counts for nothing)
  const overflowPx = (el) => {
    if (el.scrollWidth <= el.clientWidth + 1) return 0;
    if (el.tagName === "PRE") return el.scrollWidth - el.clientWidth;
    const edge = el.getBoundingClientRect().left + el.clientLeft + el.clientWidth - el.scrollLeft;
    // what a box inside scrolls or clips itself does not reach out of `el`
    const insideInner = (d) => {
      for (let a = d.parentElement; a && a !== el; a = a.parentElement) if (scrollsX(a) || clipsX(a)) return true;
      return false;
    };
    let right = -Infinity;
    for (const d of el.querySelectorAll("*")) {
      if (d.closest("mjx-assistive-mml") || insideInner(d)) continue;
      const r = d.getBoundingClientRect();
      if (r.width > 0) right = Math.max(right, r.right);
    }
    return Math.max(0, right - edge);
  };
  const wider = (el) => overflowPx(el) > 1;
  const texOf = (mjx) => {
    try {
      for (const item of window.MathJax.startup.document.math) {
        if (item.typesetRoot === mjx) return item.math.replace(/\s+/g, " ").trim();
      }
    } catch (e) { /* no MathJax on this page */ }
    return "";
  };
  const line = (text) => {
    const lines = text.replace(/\n$/, "").split("\n");
    let longest = "";
    for (const l of lines) if (l.length > longest.length) longest = l;
    return { chars: longest.length, start: longest.trim().slice(0, 72) };
  };
  // colours
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || "");
    if (!m) return null;
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1 };
  };
  const lum = (c) => {
    const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const contrast = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const over = (top, under) => ({  // alpha blending
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1 });
  const backgroundOf = (el) => {
    const layers = [];
    for (let a = el; a; a = a.parentElement) {
      const c = parse(getComputedStyle(a).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const figures = () => {
    const imgs = Array.from(article.querySelectorAll(".cell_output img, figure img")).filter(visible)
      .filter((i) => !i.closest(".cnnx"));
    const svgs = Array.from(article.querySelectorAll("svg.cnn-figure-svg")).filter(visible);
    return imgs.map((el) => ({ el, kind: "image", drawn: Number(el.getAttribute("width")) || el.naturalWidth,
                               name: (el.getAttribute("src") || "").split("/").pop().slice(0, 16) }))
      .concat(svgs.map((el) => ({ el, kind: "svg", drawn: Number(el.getAttribute("width")),
                                  name: (el.getAttribute("aria-label") || "svg figure").slice(0, 60) })));
  };
  const shrunk = (check) => {
    const out = [];
    for (const f of figures()) {
      const shown = f.el.getBoundingClientRect().width;
      if (f.drawn > 0 && shown < limits.minShown * f.drawn - 0.5) {
        out.push(offender(check, f.el, `${f.kind} ${f.name}: drawn ${Math.round(f.drawn)} px wide, ` +
          `shown ${Math.round(shown)} px (${Math.round(100 * shown / f.drawn)} %)`));
      }
    }
    return out;
  };
  // text of SVG figures and coloured math against what is behind it
  const textContrast = (mode) => {
    const out = [];
    for (const svg of document.querySelectorAll("svg.cnn-figure-svg")) {
      if (!visible(svg)) continue;
      svg.scrollIntoView({ block: "center" });
      const pageBg = backgroundOf(svg.parentElement);
      for (const t of svg.querySelectorAll("text")) {
        const fill = parse(getComputedStyle(t).fill);
        if (!fill || !t.textContent.trim()) continue;
        const r = t.getBoundingClientRect();
        let bg = pageBg, unknown = false;
        for (const under of document.elementsFromPoint(r.left + r.width / 2, r.top + r.height / 2)) {
          if (under === t || under.tagName === "text" || under.tagName === "tspan") continue;
          if (!svg.contains(under) || under === svg) break;
          if (under.tagName === "image") { unknown = true; break; }
          const f = parse(getComputedStyle(under).fill);
          if (f && f.a > 0 && getComputedStyle(under).fill !== "none") {
            const op = parseFloat(getComputedStyle(under).fillOpacity || "1");
            bg = over({ ...f, a: f.a * op }, pageBg);
            break;
          }
        }
        if (unknown) continue;
        const c = contrast(over({ ...fill, a: fill.a * parseFloat(getComputedStyle(t).fillOpacity || "1") }, bg), bg);
        if (c < limits.minContrast) {
          out.push(offender("text-contrast", svg, `${mode}: figure text "${t.textContent.trim().slice(0, 30)}" ` +
            `has contrast ${c.toFixed(1)}:1`));
          break;  // one per figure
        }
      }
    }
    const coloured = document.querySelectorAll('mjx-container .cnn-max, mjx-container [style*="color"]');
    const reported = new Set();
    for (const el of coloured) {
      const mjx = el.closest("mjx-container");
      if (!visible(el) || reported.has(mjx)) continue;
      const c = contrast(parse(getComputedStyle(el).color), backgroundOf(el));
      if (c < limits.minContrast) {
        reported.add(mjx);
        out.push(offender("text-contrast", mjx, `${mode}: coloured math has contrast ${c.toFixed(1)}:1 in ` +
                          texOf(mjx).slice(0, 60)));
      }
    }
    return out;
  };

  if (kind === "desktop") {
    const out = [];
    const seen = new Set();
    // code cells, printed outputs, code blocks
    for (const pre of article.querySelectorAll("pre")) {
      if (!visible(pre) || pre.closest(".cnnx")) continue;
      if (wider(pre)) {
        const where = pre.closest(".cell_input") ? "code cell" : pre.closest(".cell_output") ? "printed output" : "code block";
        const l = line(pre.innerText);
        out.push(offender("code-clipped", pre, `${where}: a line of ${l.chars} characters: ${l.start}`));
        seen.add(pre);
      }
    }
    // display equations: the equation is wider than the box it is shown in
    for (const mjx of article.querySelectorAll('mjx-container[display="true"]')) {
      if (!visible(mjx)) continue;
      const math = mjx.querySelector("mjx-math");
      const w = math ? math.getBoundingClientRect().width : mjx.scrollWidth;
      let avail = mjx.clientWidth;
      for (let a = mjx.parentElement; a && a !== article; a = a.parentElement) {
        if (scrollsX(a) || clipsX(a)) avail = Math.min(avail, a.clientWidth);
      }
      const r = math ? math.getBoundingClientRect() : null, b = mjx.getBoundingClientRect();
      const cut = r && (r.top < b.top - 1 || r.bottom > b.bottom + 1) && getComputedStyle(mjx).overflowY !== "visible";
      if (w > avail + 1 || cut) {
        out.push(offender("equation-clipped", mjx, (cut && w <= avail + 1 ? "cut at its top or bottom: " :
          `${Math.round(w)} px wide in ${avail} px: `) + texOf(mjx).slice(0, 72)));
        for (let a = mjx; a && a !== article; a = a.parentElement) seen.add(a);
      }
    }
    // anything else that scrolls or is cut off
    for (const el of article.querySelectorAll("*")) {
      if (seen.has(el) || !visible(el) || el.closest("mjx-assistive-mml") || el.tagName === "PRE") continue;
      if (!(scrollsX(el) || clipsX(el)) || !wider(el)) continue;
      if (el.querySelector("pre, mjx-container") && Array.from(el.querySelectorAll("pre, mjx-container")).some((c) => seen.has(c))) continue;
      if (el.closest("mjx-container")) continue;
      const what = el.closest(".cnnx") ? "explorable" : el.querySelector("table") ? "table" :
        el.querySelector("svg, img") ? "figure" : "box";
      out.push(offender("box-clipped", el, `${what}: ${Math.round(el.clientWidth + overflowPx(el))} px wide in ${el.clientWidth} px`));
      seen.add(el);
    }
    // wider than the column without scrolling
    const col = article.getBoundingClientRect();
    const inScroller = (el) => { for (let a = el.parentElement; a && a !== article; a = a.parentElement) if (scrollsX(a) || clipsX(a)) return true; return false; };
    let sticking = 0;
    for (const el of article.querySelectorAll("*")) {
      if (!visible(el) || el.closest("mjx-assistive-mml")) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= col.right - parseFloat(getComputedStyle(article).paddingRight) + 1) continue;
      if (inScroller(el)) continue;
      if (sticking++ < 5) out.push(offender("sticks-out", el, `${Math.round(r.right - col.left)} px from the column's left edge`));
    }
    out.push(...shrunk("figure-shrunk"));
    for (const svg of article.querySelectorAll("svg.cnn-figure-svg")) {
      if (!visible(svg)) continue;
      const vb = svg.viewBox.baseVal;
      const scale = vb && vb.width ? svg.getBoundingClientRect().width / vb.width : 1;
      // each run of text (a <text>, or a <tspan> of a mathtext label); a sub- or superscript,
      // smaller than the rest of its label by design, may be down to 0.7 of the limit
      for (const t of svg.querySelectorAll("text")) {
        const runs = t.querySelector("tspan") ? Array.from(t.querySelectorAll("tspan")) : [t];
        const sizes = runs.map((r) => parseFloat(getComputedStyle(r).fontSize) * scale);
        const base = Math.max(...sizes);
        const small = runs.findIndex((r, i) => r.textContent.trim() &&
          sizes[i] < (sizes[i] < base ? 0.7 : 1) * limits.minFigureTextPx - 0.05);
        if (small >= 0) {
          out.push(offender("figure-text-small", svg, `"${t.textContent.replace(/\s+/g, "").slice(0, 30)}" ` +
                            `is ${sizes[small].toFixed(1)} px as shown`));
          break;  // one per figure
        }
      }
    }
    out.push(...textContrast("light"));
    return { offenders: out, column: Math.round(article.clientWidth - parseFloat(getComputedStyle(article).paddingLeft)
      - parseFloat(getComputedStyle(article).paddingRight)), theme: document.documentElement.dataset.theme };
  }

  if (kind === "dark-figures") return figures().map((f) => ({ name: `${f.kind} ${f.name}` }));
  if (kind === "dark-figure") {  // figure number `limits` brought into view: where it is
    const f = figures()[limits];
    f.el.scrollIntoView({ block: "center" });
    const r = f.el.getBoundingClientRect();
    const top = Math.max(0, r.top), bottom = Math.min(window.innerHeight, r.bottom);
    return { section: section(f.el), element: describe(f.el),
             clip: { x: Math.max(0, r.left), y: top, width: Math.min(r.width, window.innerWidth - Math.max(0, r.left)),
                     height: bottom - top } };
  }
  if (kind === "dark") return { offenders: textContrast("dark"), theme: document.documentElement.dataset.theme };

  if (kind === "phone") {
    const W = document.documentElement.clientWidth;
    const screen = { left: 0, right: W };
    const sticksOut = (r, box) => r.right > box.right + 1 || r.left < box.left - 1;
    const scrollsInside = (el) => {
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (scrollsX(a) && !sticksOut(a.getBoundingClientRect(), screen)) return true;
      }
      return false;
    };
    const clipBox = (el) => {
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (scrollsX(a)) return null;
        if (clipsX(a)) return a;
      }
      return null;
    };
    const out = [];
    const scrollWidth = document.scrollingElement.scrollWidth;
    if (scrollWidth > W + 1) out.push(offender("phone-overflow", document.body, `the page is ${scrollWidth} px wide on a ${W} px screen`));
    const main = document.querySelector("main") || document.body;
    let n = 0;
    for (const el of main.querySelectorAll("*")) {
      if (!visible(el) || el.closest("mjx-assistive-mml")) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const clip = clipBox(el);
      if (clip && sticksOut(r, clip.getBoundingClientRect())) {
        if (n++ < 8) out.push(offender("phone-overflow", el, `cut off at the edge of ${describe(clip)} [${Math.round(r.left)}..${Math.round(r.right)}]`));
      } else if (sticksOut(r, screen) && !scrollsInside(el)) {
        if (n++ < 8) out.push(offender("phone-overflow", el, `sticks out of the screen [${Math.round(r.left)}..${Math.round(r.right)}]`));
      }
    }
    for (const i of Array.from(main.querySelectorAll("img")).filter(visible)) {
      if (!(i.complete && i.naturalWidth > 0)) out.push(offender("phone-overflow", i, `image did not load: ${i.getAttribute("src")}`));
    }
    out.push(...shrunk("phone-figure-shrunk"));
    return { offenders: out, innerWidth: W, scrollWidth, theme: document.documentElement.dataset.theme };
  }
  throw new Error(`unknown measurement ${kind}`);
}

// The fraction of bright pixels of a PNG (decoded by the page's own image decoder).
function brightFraction([b64, threshold]) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const c = document.createElement("canvas");
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
      let bright = 0, n = 0;
      for (let i = 0; i < d.length; i += 16) {  // every 4th pixel
        n++;
        if (0.2126 * f(d[i]) + 0.7152 * f(d[i + 1]) + 0.0722 * f(d[i + 2]) > threshold) bright++;
      }
      resolve(n ? bright / n : 0);
    };
    img.onerror = () => reject(new Error("screenshot could not be decoded"));
    img.src = "data:image/png;base64," + b64;
  });
}

async function setTheme(page, mode) {
  await page.evaluate((m) => {
    document.documentElement.dataset.theme = m;
    document.documentElement.dataset.mode = m;
  }, mode);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// What the reader can unfold (solutions, "Show code cell source") is measured unfolded.
function unfold(on) {
  if (on) {
    const style = document.createElement("style");
    style.id = "cnn-layout-unfold";
    style.textContent = `.admonition.toggle-hidden .admonition-title ~ *, .admonition.dropdown .admonition-title ~ * {
      height: auto !important; margin: revert !important; opacity: 1 !important; visibility: visible !important;
      display: block !important; }`;
    document.head.appendChild(style);
    window.__cnnOpened = Array.from(document.querySelectorAll("main details:not([open])"));
    for (const d of window.__cnnOpened) d.open = true;
  } else {
    const style = document.getElementById("cnn-layout-unfold");
    if (style) style.remove();
    for (const d of window.__cnnOpened || []) d.open = false;
  }
}

// The pass on a loaded page (at 1280 px, light). Leaves it as it found it.
// `weight`: {htmlBytes, gzipBytes, imageBytes} measured while the page loaded (trackWeight).
async function measureLayout(page, { weight = null, shots = null, name = "page" } = {}) {
  const started = Date.now();
  const offenders = [];
  const info = {};
  const shot = async (mode) => {
    if (shots) await page.screenshot({ path: path.join(shots, `${name.replace(/[\/]/g, "_")}.${mode}.png`) });
  };
  await page.evaluate(unfold, true);
  const desktop = await page.evaluate(inPage, ["desktop", LIMITS]);
  offenders.push(...desktop.offenders);
  info.column = desktop.column;
  info.lightTheme = desktop.theme;

  await setTheme(page, "dark");
  const boxes = await page.evaluate(inPage, ["dark-figures", LIMITS]);
  for (const [i, { name }] of boxes.entries()) {
    const box = { name, ...(await page.evaluate(inPage, ["dark-figure", i])) };
    if (box.clip.width < 2 || box.clip.height < 2) continue;
    const png = await page.screenshot({ clip: box.clip });
    const bright = await page.evaluate(brightFraction, [png.toString("base64"), LIMITS.brightLuminance]);
    if (bright > LIMITS.maxBrightFraction) {
      offenders.push({ check: "dark-bright-figure", section: box.section, element: box.element,
                       detail: `${box.name}: ${Math.round(100 * bright)} % of its box is bright in dark mode` });
    }
  }
  const dark = await page.evaluate(inPage, ["dark", LIMITS]);
  offenders.push(...dark.offenders);
  info.darkTheme = dark.theme;
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot("dark");

  await page.setViewportSize(PHONE);
  await page.waitForTimeout(500);  // the theme's sidebars slide away (0.2-0.4 s transitions)
  const phoneDark = await page.evaluate(inPage, ["phone", LIMITS]);
  await shot("phone-dark");
  await setTheme(page, "light");
  const phoneLight = await page.evaluate(inPage, ["phone", LIMITS]);
  await shot("phone-light");
  const key = (o) => `${o.check}|${o.element}|${o.detail}`;
  const phoneSeen = new Set(phoneLight.offenders.map(key));
  offenders.push(...phoneLight.offenders, ...phoneDark.offenders.filter((o) => !phoneSeen.has(key(o))));
  info.phone = { innerWidth: phoneLight.innerWidth, scrollWidthLight: phoneLight.scrollWidth, scrollWidthDark: phoneDark.scrollWidth };
  await page.setViewportSize(DESKTOP);
  await page.evaluate(unfold, false);
  await page.evaluate(() => window.scrollTo(0, 0));

  if (weight) {
    info.weight = weight;
    const kb = (weight.gzipBytes + weight.imageBytes) / 1024;
    if (kb > LIMITS.maxPageKB) {
      offenders.push({ check: "page-weight", section: "(the page)", element: "html",
                       detail: `${Math.round(kb)} KB: HTML ${Math.round(weight.gzipBytes / 1024)} KB gzipped ` +
                               `(${Math.round(weight.htmlBytes / 1024)} KB), its images ${Math.round(weight.imageBytes / 1024)} KB` });
    }
  }
  info.seconds = (Date.now() - started) / 1000;
  return { offenders, info };
}

// Record what a page loads that counts towards its weight; call before page.goto, then
// `await finish(response)` with goto's response.
function trackWeight(page) {
  const images = [];
  page.on("response", (r) => { if (/\/_images\//.test(r.url()) && r.status() < 400) images.push(r); });
  return async (response) => {
    const html = response ? await response.body() : Buffer.alloc(0);
    let imageBytes = 0;
    for (const r of images) imageBytes += (await r.body().catch(() => Buffer.alloc(0))).length;
    return { htmlBytes: html.length, gzipBytes: zlib.gzipSync(html, { level: 9 }).length, imageBytes };
  };
}

// Wait until a loaded page is drawn: MathJax's first pass, the widget manager's views, fonts.
async function waitDrawn(page, { explorables = 0 } = {}) {
  await page.waitForFunction(
    () => !document.querySelector('script[src*="mathjax@"]') ||
          (window.MathJax && window.MathJax.startup && window.MathJax.startup.document &&
           window.MathJax.startup.promise), null, { timeout: 20000 }).catch(() => {});
  await page.evaluate(() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise).catch(() => {});
  const views = await page.evaluate(() => document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length);
  if (views) {
    await page.waitForFunction((n) => document.querySelectorAll(".widget-subarea").length >= n &&
      Array.from(document.querySelectorAll(".widget-subarea")).every((s) => s.childElementCount > 0),
      views, { timeout: 30000 }).catch(() => {});
    if (explorables) {
      await page.waitForFunction((n) => document.querySelectorAll("div.cnnx[data-key]").length >= n, explorables,
                                 { timeout: 30000 }).catch(() => {});
    }
    await page.waitForTimeout(300);  // late errors of the widget manager (typesetting, fonts)
  }
  await page.evaluate(() => document.fonts && document.fonts.ready).catch(() => {});
  return views;
}

function summary(report) {
  const lines = [];
  for (const [name, p] of Object.entries(report.pages)) {
    lines.push(`${name}: ${p.offenders.length ? p.offenders.length + " offenders" : "fits"}` +
               (p.info && p.info.weight ? `  (${Math.round((p.info.weight.gzipBytes + p.info.weight.imageBytes) / 1024)} KB)` : ""));
    for (const o of p.offenders) lines.push(`  ${o.check.padEnd(19)} ${o.section.slice(0, 40).padEnd(40)}  ${o.detail}`);
  }
  return lines.join("\n");
}

module.exports = { measureLayout, trackWeight, waitDrawn, summary, LIMITS, DESKTOP, PHONE };

if (require.main === module) {
  (async () => {
    const [base, outdir, ...pages] = process.argv.slice(2);
    if (!base || !outdir || !pages.length) {
      console.error("usage: node check_layout.js BASE_URL OUTDIR page.html [page.html ...]");
      process.exit(2);
    }
    fs.mkdirSync(outdir, { recursive: true });
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: DESKTOP, colorScheme: "light" });
    await context.addInitScript(() => { localStorage.setItem("mode", "light"); localStorage.setItem("theme", "light"); });
    const blocked = new Set();
    await routeLocal(context, base.replace(/\/$/, ""), blocked);
    const report = { limits: LIMITS, pages: {} };
    for (const name of pages) {
      const page = await context.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      const finish = trackWeight(page);
      const response = await page.goto(`${base.replace(/\/$/, "")}/${name}`, { waitUntil: "load" });
      await waitDrawn(page);
      const weight = await finish(response);
      const { offenders, info } = await measureLayout(page, { weight, shots: outdir, name });
      report.pages[name] = { offenders, info, errors };
      await page.close();
    }
    report.blocked = Array.from(blocked);
    await browser.close();
    fs.writeFileSync(path.join(outdir, "layout-report.json"), JSON.stringify(report, null, 1));
    console.log(summary(report));
  })().catch((e) => { console.error(e); process.exit(1); });
}
