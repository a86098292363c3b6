// Serve the CDN scripts the static pages load (MathJax 3, require.js, the Jupyter widget
// manager) from the local npm copies in node_modules, so the browser checks run offline, and
// strip the pages' subresource-integrity hashes (they pin the CDN's minified builds; the npm
// copies are the same versions but not the same bytes).
const path = require("path");
const fs = require("fs");

const NM = path.join(__dirname, "node_modules");
const LOCAL = [
  // [pattern, function(match) -> local file]
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

// Route every request of a playwright BrowserContext: pages under `base` as they are (HTML
// without integrity attributes), CDN scripts from node_modules, anything else aborted and
// recorded in `blocked` (a Set).
async function routeLocal(context, base, blocked) {
  await context.route("**/*", async (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) {
      if (!url.split("?")[0].endsWith(".html")) return route.continue();
      const response = await route.fetch();
      const body = (await response.text()).replace(/\s+integrity="[^"]*"/g, "");
      return route.fulfill({ response, body });
    }
    const file = localFile(url.split("?")[0]);
    if (file && fs.existsSync(file)) {
      const type = file.endsWith(".js") ? "application/javascript" : undefined;
      return route.fulfill({ path: file, contentType: type });
    }
    if (blocked) blocked.add(url);
    return route.abort();
  });
}

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

module.exports = { localFile, routeLocal, CHROMIUM_ARGS };
