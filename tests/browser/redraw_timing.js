// Time each control change of the book's explorables in the page (check_pages.js, check_lab.js):
// from the first input/change event that reaches an explorable (capture phase, before the view's
// own listener) to the end of that event's dispatch (the synchronous redraw, "sync") and to the
// next animation frame ("frame"). Install with page.addInitScript(installTiming); read and reset
// with page.evaluate(takeTimings); wait for `!window.__cnnxTiming.pending` after a move.
function installTiming() {
  if (window.__cnnxTiming) return;
  const t = (window.__cnnxTiming = { frame: [], sync: [], pending: false, t0: 0, synced: false });
  const inExplorable = (e) => e.target && e.target.closest && e.target.closest("div.cnnx");
  const start = (e) => {
    if (!inExplorable(e) || t.pending) return;
    t.pending = true;
    t.synced = false;
    t.t0 = performance.now();
    requestAnimationFrame(() => {
      t.frame.push(performance.now() - t.t0);
      t.pending = false;
    });
  };
  const end = (e) => {
    if (!t.pending || t.synced || !inExplorable(e)) return;
    t.synced = true;
    t.sync.push(performance.now() - t.t0);
  };
  for (const type of ["input", "change"]) {
    document.addEventListener(type, start, true);
    window.addEventListener(type, end, false);
  }
}

function takeTimings() {
  const t = window.__cnnxTiming;
  const out = { frame: t.frame.slice(), sync: t.sync.slice() };
  t.frame.length = 0;
  t.sync.length = 0;
  return out;
}

module.exports = { installTiming, takeTimings };
