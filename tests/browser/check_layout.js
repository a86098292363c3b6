// A reader on a phone, in light and in dark mode: open pages of the built book at 390 px width
// in headless Chromium and report what does not fit.
//
//   node check_layout.js BASE_URL SCREENSHOT_DIR page1.html [page2.html ...]
//
// For every page and mode it reports: the theme the page ended up in, the page's horizontal
// overflow (document.scrollingElement.scrollWidth vs innerWidth) and the elements that stick out
// of the screen without being inside a container that scrolls by itself (code cells, output
// areas, tables that scroll), images wider than the screen or not loaded, and in dark mode the
// background, padding and filter of every figure image. Prints one JSON object on stdout.
const path = require("path");
const { chromium } = require("playwright-core");
const { routeLocal, CHROMIUM_ARGS } = require("./local_cdn");

const WIDTH = 390;
const HEIGHT = 844;

function measure() {
  // the width of the screen (on a phone, innerWidth grows to the page's width when it overflows)
  const W = document.documentElement.clientWidth;
  const sticksOut = (r, box) => r.right > box.right + 1 || r.left < box.left - 1;
  const screen = { left: 0, right: W };
  // inside a box that scrolls sideways by itself (a code cell, an output area, a table) and fits the screen
  const scrollsInside = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if ((ox === "auto" || ox === "scroll") && !sticksOut(a.getBoundingClientRect(), screen)) return true;
    }
    return false;
  };
  // the nearest box that cuts off what sticks out of it
  const clipBox = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === "auto" || ox === "scroll") return null;
      if (ox === "hidden" || ox === "clip") return a;
    }
    return null;
  };
  const visible = (el) => el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.classList.length) s += "." + Array.from(el.classList).slice(0, 3).join(".");
    const r = el.getBoundingClientRect();
    return `${s} [${Math.round(r.left)}..${Math.round(r.right)}]`;
  };
  const main = document.querySelector("main") || document.body;
  const sticking = [];  // off the screen, not inside a box that scrolls
  const clipped = [];   // cut off by a box that hides its overflow
  for (const el of main.querySelectorAll("*")) {
    // MathJax's MathML copy for screen readers is clipped on purpose
    if (!visible(el) || el.closest("mjx-assistive-mml")) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const clip = clipBox(el);
    if (clip && sticksOut(r, clip.getBoundingClientRect())) {
      if (clipped.length < 8) clipped.push(describe(el));
    } else if (sticksOut(r, screen) && !scrollsInside(el)) {
      if (sticking.length < 8) sticking.push(describe(el));
    }
  }
  const imgs = Array.from(main.querySelectorAll("img")).filter(visible);
  const figureImgs = imgs.filter((i) => i.closest(".cell_output, figure, .figure"));
  const px = (v) => parseFloat(v) || 0;
  return {
    theme: document.documentElement.dataset.theme,
    innerWidth: W,
    layoutWidth: window.innerWidth,
    scrollWidth: document.scrollingElement.scrollWidth,
    sticking,
    images: imgs.length,
    brokenImages: imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.getAttribute("src")),
    clipped,
    // an image fits when it is no wider than the screen and than the box around it
    wideImages: imgs.filter((i) => {
      const r = i.getBoundingClientRect();
      return r.width > W + 1 || r.width > i.parentElement.getBoundingClientRect().width + 1;
    }).map((i) => i.getAttribute("src")),
    figureImages: figureImgs.map((i) => {
      const cs = getComputedStyle(i);
      return {
        src: i.getAttribute("src"),
        background: cs.backgroundColor,
        padding: Math.min(px(cs.paddingTop), px(cs.paddingRight), px(cs.paddingBottom), px(cs.paddingLeft)),
        border: px(cs.borderTopWidth),
        filter: cs.filter,
      };
    }),
    bodyFontPx: px(getComputedStyle(main).fontSize),
  };
}

(async () => {
  const [base, shots, ...pages] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  const result = { pages: {}, blocked: [] };
  const blocked = new Set();
  for (const mode of ["light", "dark"]) {
    const context = await browser.newContext({
      viewport: { width: WIDTH, height: HEIGHT }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
      colorScheme: mode,
    });
    // pydata-sphinx-theme keeps the reader's choice in localStorage ("mode": light/dark/auto)
    await context.addInitScript((m) => {
      localStorage.setItem("mode", m);
      localStorage.setItem("theme", m);
    }, mode);
    await routeLocal(context, base, blocked);
    for (const name of pages) {
      const page = await context.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${base}/${name}`, { waitUntil: "load" });
      await page.evaluate(() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise).catch(() => {});
      const hasWidgetState = await page.evaluate(() => !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]'));
      if (hasWidgetState) {
        await page.waitForSelector(".jupyter-widgets, .cnnx", { timeout: 20000 }).catch(() => {});  // explorables draw .cnnx
        await page.waitForTimeout(500);
      }
      const info = await page.evaluate(measure);
      info.errors = errors;
      if (shots) {
        await page.screenshot({ path: path.join(shots, `${name.replace(/[\/]/g, "_")}.${mode}.png`), fullPage: false });
      }
      result.pages[`${name} ${mode}`] = info;
      await page.close();
    }
    await context.close();
  }
  result.blocked = Array.from(blocked);
  await browser.close();
  console.log(JSON.stringify(result));
})().catch((e) => { console.error(e); process.exit(1); });
