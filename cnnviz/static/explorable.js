// The book's explorables and grid figures: one view for all of them (cnnviz/explorable.py computes
// the states; a figure is a state with no controls).
//
// The model holds every state of the control grid ("states", one JSON text keyed by the control
// values joined with "|"), so a control redraws from memory, with or without a kernel.  Hovering a
// cell, tapping it or reaching it with the arrow keys shows what it is linked to (state.links) and
// its fuller value where the cell shows a rounded one; a click pins it.  Actions (a new random draw,
// a typed matrix) are sent to the kernel, which replaces the states; without a kernel they say so.
//
// DOM contract (the browser tests rely on it):
//   div.cnnx[data-kind][data-key]        the root; .cnnx-fixed for a figure of one state;
//                                        data-followed = the followed cell id, data-kernel = yes | no
//   [data-control="<name>"]              each control's input; button[data-action="<name>"] each action,
//                                        input[data-action-field="<name>"] a text action's field
//   div.cnnx-panels > div.cnnx-pbox > svg.cnnx-panel[data-panel="<id>"]    one per panel, holding
//     text.cnnx-title (<sub>/<sup> as tspans), text.cnnx-subtitle, text.cnnx-op, text.cnnx-axis,
//     g.cnnx-cell[data-r][data-c][data-id] (its classes; .cur/.linked when followed) with a rect and one
//       <text class="cnnx-num">; data-exact holds the fuller value where the text is rounded,
//     g.cnnx-windows > rect.cnnx-window[.c1 … .c4, .dead], g.cnnx-overlay > rect.cnnx-hlwin
//   div.cnnx-legend > span.cnnx-key[data-key="<key of LEGEND in explorable.py>"]
//   div.cnnx-info (the read-out), div.cnnx-caption, p.cnnx-message (a state with nothing to draw)

const NS = "http://www.w3.org/2000/svg";
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';  // as .cnnx in explorable.css
const NUM_PX = 13, TITLE_PX = 13, SUB_PX = 12, AXIS_PX = 12;   // the font sizes of explorable.css
const CELL_H = 34, CELL_MIN_W = 34, CELL_PAD = 5;  // a cell: height, narrowest width, room beside its text
const OP_W = 30, TITLE_LINE = 17, SUB_LINE = 15, AXIS_LINE = 16, TOP_PAD = 8;
const WRAP_MIN = 240;                  // titles wrap at the grid's width, but not narrower than this
const MIN_SCALE = 11 / NUM_PX;         // a panel never shrinks text below 11 px: it scrolls instead
const WINDOW_LEVEL = { c1: 0, c2: 1, c3: 2, c4: 3 };  // staggered insets keep overlapping windows apart
const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

// ---- text ---------------------------------------------------------------------------------------
function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// Captions and link texts may carry a few inline tags; everything else is escaped.
function richText(s) {
  return esc(s).replace(/&lt;(\/?)(b|i|sub|sup|code|br)&gt;/g, "<$1$2>");
}

const plain = (s) => String(s).replace(/<\/?(b|i|sub|sup|code|br)>/g, "");

// A title as pieces of text with their style: [{t, sub, sup, b, i}].
function pieces(s) {
  const out = [], on = { sub: 0, sup: 0, b: 0, i: 0 };
  for (const part of String(s).split(/(<\/?(?:b|i|sub|sup)>)/)) {
    const tag = /^<(\/?)(b|i|sub|sup)>$/.exec(part);
    if (tag) on[tag[2]] += tag[1] ? -1 : 1;
    else if (part) out.push({ t: part, sub: on.sub > 0, sup: on.sup > 0, b: on.b > 0, i: on.i > 0 });
  }
  return out;
}

let ctx = null;
const widths = new Map();
function textWidth(t, px, weight = 400, italic = false) {
  const key = `${weight}|${px}|${italic}|${t}`;
  let w = widths.get(key);
  if (w === undefined) {
    ctx = ctx || document.createElement("canvas").getContext("2d");
    ctx.font = `${italic ? "italic " : ""}${weight} ${px}px ${FONT}`;
    w = ctx.measureText(t).width * 1.03 + 1;  // a margin for font hinting
    widths.set(key, w);
  }
  return w;
}

const pieceWidth = (p, px, weight) => textWidth(p.t, p.sub || p.sup ? px * 0.75 : px, p.b ? 700 : weight, p.i);

// Greedy line breaking of styled pieces at spaces: [{pieces, width}], each line ≤ maxW when it can be.
function wrap(text, maxW, px, weight) {
  const words = [[]];
  for (const p of pieces(text)) {
    p.t.split(/(\s+)/).forEach((chunk, k) => {
      if (k % 2) words.push([]);
      else if (chunk) words[words.length - 1].push({ ...p, t: chunk });
    });
  }
  const space = textWidth(" ", px, weight);
  const lines = [];
  for (const word of words.filter((w) => w.length)) {
    const w = word.reduce((s, p) => s + pieceWidth(p, px, weight), 0);
    const line = lines[lines.length - 1];
    if (line && line.width + space + w <= maxW) {
      line.pieces.push({ t: " " }, ...word);
      line.width += space + w;
    } else {
      lines.push({ pieces: word.slice(), width: w });
    }
  }
  return lines;
}

// One line of styled pieces as SVG tspans (sub- and superscripts shifted and smaller).
function tspans(line) {
  let shift = 0;
  return line.pieces.map((p) => {
    const want = p.sub ? 4 : p.sup ? -4 : 0;
    const attrs = (want !== shift ? ` dy="${want - shift}"` : "") + (p.sub || p.sup ? ' font-size="75%"' : "") +
      (p.b ? ' font-weight="700"' : "") + (p.i ? ' font-style="italic"' : "");
    shift = want;
    return attrs ? `<tspan${attrs}>${esc(p.t)}</tspan>` : esc(p.t);
  }).join("");
}

function keyPart(v) {
  if (v === true) return "true";
  if (v === false) return "false";
  return String(v);
}

// ---- panels (SVG) -------------------------------------------------------------------------------
// A panel's geometry, worked out once per panel object: cells as wide as its longest text, titles
// wrapped and measured so nothing is clipped.
const layouts = new WeakMap();
function layout(p) {
  let L = layouts.get(p);
  if (L) return L;
  let longest = 0;
  p.text.forEach((row, r) => row.forEach((t, c) => {
    // digits are tabular (each as wide as a 0); a winner's number is bold
    const bold = p.classes && /\bwin\b/.test(p.classes[r][c]);
    if (t) longest = Math.max(longest, textWidth(t.replace(/[0-9]/g, "0"), NUM_PX, bold ? 700 : 400));
  }));
  for (const t of p.colLabels || []) longest = Math.max(longest, textWidth(t, AXIS_PX));
  const cw = Math.max(CELL_MIN_W, Math.ceil(longest + 2 * CELL_PAD));
  const rowW = p.rowLabels ? Math.ceil(Math.max(...p.rowLabels.map((t) => textWidth(t, AXIS_PX)))) + 6 : 0;
  const opW = p.op ? OP_W : 0;
  const gridW = p.cols * cw;
  const wrapW = Math.max(rowW + gridW, WRAP_MIN);
  const title = wrap(p.title, wrapW, TITLE_PX, 600);
  const subtitle = p.subtitle ? wrap(p.subtitle, wrapW, SUB_PX, 400) : [];
  const textW = Math.max(0, ...title.concat(subtitle).map((l) => l.width));
  const x0 = opW + 3;                                   // titles and row labels start here
  const left = x0 + rowW;                               // the grid starts here
  const top = title.length * TITLE_LINE + subtitle.length * SUB_LINE + (p.colLabels ? AXIS_LINE : 0) + TOP_PAD;
  const width = Math.ceil(Math.max(left + gridW, x0 + textW) + 4);
  L = { cw, x0, left, top, title, subtitle, width, height: top + p.rows * CELL_H + 4 };
  layouts.set(p, L);
  return L;
}

function fillStyle(p, f) {
  if (f === null || f === undefined || p.scale === "none") return "";
  if (p.scale === "div") {
    if (f === 0) return "";
    const a = Math.min(1, Math.abs(f)).toFixed(3);
    return `fill: rgba(var(--cnnx-${f > 0 ? "pos" : "neg"}-rgb), calc(var(--cnnx-div-max) * ${a}))`;
  }
  return `fill: rgba(var(--cnnx-seq-rgb), calc(var(--cnnx-seq-min) + var(--cnnx-seq-span) * ${f.toFixed(3)}))`;
}

function windowRect(L, w, base, inset) {
  const [, r, c, h, wd, cls] = w;
  return `<rect class="${base} ${esc(cls || "")}" x="${L.left + c * L.cw + inset}" y="${L.top + r * CELL_H + inset}" ` +
    `width="${Math.max(2, wd * L.cw - 2 * inset)}" height="${Math.max(2, h * CELL_H - 2 * inset)}"></rect>`;
}

// A one-cell window (a mark on an output cell) keeps to the cell's edge: staggering it would draw its
// outline through the number.
const windowInset = (w) => (w[3] === 1 && w[4] === 1 ? 2
  : 2 + 3 * Math.max(0, ...String(w[5] || "").split(" ").map((t) => WINDOW_LEVEL[t] || 0)));

function panelSVG(p, readable) {
  const L = layout(p);
  const out = [];
  const focus = readable ? ' tabindex="0"' : "";
  out.push(`<div class="cnnx-pbox"><svg xmlns="${NS}" class="cnnx-panel" data-panel="${esc(p.id)}" ` +
    `viewBox="0 0 ${L.width} ${L.height}" width="${L.width}" height="${L.height}" ` +
    `style="width:${L.width}px;min-width:${Math.ceil(L.width * MIN_SCALE)}px" role="group" ` +
    `aria-label="${esc(plain(p.title))}"${focus}>`);
  let y = 0;
  const line = (cls, step, l) => `<text class="${cls}" x="${L.x0}" y="${(y += step) - 2}">${tspans(l)}</text>`;
  for (const l of L.title) out.push(line("cnnx-title", TITLE_LINE, l));
  for (const l of L.subtitle) out.push(line("cnnx-subtitle", SUB_LINE, l));
  if (p.op) out.push(`<text class="cnnx-op" x="${OP_W / 2}" y="${L.top + (p.rows * CELL_H) / 2}">${esc(p.op)}</text>`);
  if (p.colLabels) p.colLabels.forEach((s, c) =>
    out.push(`<text class="cnnx-axis" x="${L.left + c * L.cw + L.cw / 2}" y="${L.top - 6}">${esc(s)}</text>`));
  if (p.rowLabels) p.rowLabels.forEach((s, r) =>
    out.push(`<text class="cnnx-axis cnnx-rowlabel" x="${L.left - 4}" y="${L.top + (r + 0.5) * CELL_H}">${esc(s)}</text>`));
  for (let r = 0; r < p.rows; r++) {
    for (let c = 0; c < p.cols; c++) {
      const x = L.left + c * L.cw, yy = L.top + r * CELL_H;
      const exact = p.exact && p.exact[r][c] ? ` data-exact="${esc(p.exact[r][c])}"` : "";
      out.push(`<g class="cnnx-cell ${p.classes ? esc(p.classes[r][c]) : ""}" data-r="${r}" data-c="${c}" ` +
        `data-id="${esc(p.id)}:${r}:${c}"${exact}><rect x="${x}" y="${yy}" width="${L.cw}" height="${CELL_H}" ` +
        `style="${fillStyle(p, p.fill[r][c])}"></rect><text class="cnnx-num" x="${x + L.cw / 2}" ` +
        `y="${yy + CELL_H / 2}">${esc(p.text[r][c])}</text></g>`);
    }
  }
  out.push(`<g class="cnnx-windows">`);
  for (const w of p.windows || []) out.push(windowRect(L, w, "cnnx-window", windowInset(w)));
  out.push(`</g><g class="cnnx-overlay"></g></svg></div>`);
  return out.join("");
}

// ---- legend -------------------------------------------------------------------------------------
// A small drawing of each legend entry, made of the same classes as the panels (so the same CSS).
function swatch(key) {
  const cell = (cls, text = "") => `<g class="cnnx-cell ${cls}"><rect x="3" y="2" width="20" height="16"></rect>` +
    (text ? `<text class="cnnx-num" x="13" y="10">${text}</text>` : "") + "</g>";
  const box = (cls) => `<rect class="${cls}" x="2" y="2" width="22" height="16"></rect>`;
  const [kind, sub] = key.split(".");
  let body;
  if (kind === "fill") body = box(`cnnx-fill-${sub}`);
  else if (kind === "window") body = box(`cnnx-window ${sub || ""}`);
  else if (kind === "follow") body = sub === "windows" ? box("cnnx-hlwin") : cell(sub === "cell" ? "cur" : "linked");
  else body = cell(key, ["dead", "dim", "zero", "pad"].includes(key) ? "0" : "");
  return `<svg class="cnnx-swatch" viewBox="0 0 26 20" width="26" height="20" aria-hidden="true">${body}</svg>`;
}

function legendHTML(entries) {
  return (entries || []).map(([key, text]) =>
    `<span class="cnnx-key" data-key="${esc(key)}">${swatch(key)}${richText(text)}</span>`).join("");
}

// ---- controls -----------------------------------------------------------------------------------
function el(tag, cls, parent, props = {}) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  Object.assign(node, props);
  if (parent) parent.appendChild(node);
  return node;
}

function controlEl(spec, value, onChange) {
  const wrap = el("label", "cnnx-control cnnx-" + spec.kind, null, spec.help ? { title: spec.help } : {});
  el("span", "cnnx-label", wrap, { textContent: spec.label });
  const idx = Math.max(0, spec.keys.indexOf(keyPart(value)));
  let input;
  if (spec.kind === "slider") {
    input = el("input", "", wrap, { type: "range", min: "0", max: String(spec.options.length - 1), step: "1",
                                    value: String(idx) });
    const readout = el("output", "cnnx-readout", null, { textContent: spec.labels[idx] });
    input.setAttribute("aria-valuetext", spec.labels[idx]);
    input.addEventListener("input", () => {
      const i = Number(input.value);
      readout.textContent = spec.labels[i];
      input.setAttribute("aria-valuetext", spec.labels[i]);
      onChange(spec.options[i]);
    });
    wrap.append(input, readout);
  } else if (spec.kind === "select") {
    input = el("select", "", wrap);
    spec.labels.forEach((label, i) => el("option", "", input, { value: String(i), textContent: label }));
    input.value = String(idx);
    input.addEventListener("change", () => onChange(spec.options[Number(input.value)]));
  } else {
    input = el("input", "", wrap, { type: "checkbox", checked: value === true });
    input.addEventListener("change", () => onChange(input.checked));
  }
  input.dataset.control = spec.name;
  return { wrap, input };
}

// Show `value` on a control's input without firing it (the model changed from elsewhere).
function showControl(spec, input, value) {
  const i = Math.max(0, spec.keys.indexOf(keyPart(value)));
  if (spec.kind === "toggle") input.checked = value === true;
  else input.value = String(i);
  const out = input.parentElement.querySelector("output");
  if (out) out.textContent = spec.labels[i];
}

// ---- the view -----------------------------------------------------------------------------------
class View {
  constructor(model, host) {
    this.model = model;
    const root = (this.root = el("div", "cnnx", host));
    root.dataset.kind = model.get("kind");
    root.setAttribute("role", "figure");
    this.heading = el("div", "cnnx-heading", root);
    this.controlsBox = el("div", "cnnx-controls", root);
    this.actionsBox = el("div", "cnnx-actions", root);
    this.panelsBox = el("div", "cnnx-panels", root);
    this.legendBox = el("div", "cnnx-legend", root);
    this.info = el("div", "cnnx-info", root);
    this.info.setAttribute("aria-live", "polite");
    this.caption = el("div", "cnnx-caption", root);
    this.values = Object.assign({}, model.get("values"));
    this.pinned = null;    // the followed cell id, kept across redraws when it still exists
    this.hovered = null;
    this.hasKernel = false;
    this.state = null;
    this.inputs = {};
    this.statesRaw = this.statesParsed = null;
    // JupyterLab's notebook shortcuts must not eat the keys a reader uses on the controls.
    root.addEventListener("keydown", (e) => e.stopPropagation());
    this.panelsBox.addEventListener("mouseover", (e) => this.onOver(e));
    this.panelsBox.addEventListener("mouseleave", () => { this.hovered = null; this.follow(this.pinned); });
    this.panelsBox.addEventListener("click", (e) => this.onClick(e));
    this.panelsBox.addEventListener("keydown", (e) => this.onKey(e));
    this.handlers = {
      "change:states": () => { this.setStatus(""); this.draw(); },
      "change:controls": () => {
        this.values = Object.assign({}, model.get("values"));
        this.buildControls();
        this.draw();
      },
      "change:values": () => this.onValues(),
      "msg:custom": (msg) => this.onMsg(msg),
    };
    for (const [ev, f] of Object.entries(this.handlers)) model.on(ev, f);
  }

  dispose() {
    for (const [ev, f] of Object.entries(this.handlers)) this.model.off(ev, f);
  }

  // The states arrive as one JSON text (parsed once per change; a plain object is taken as is).
  allStates() {
    const raw = this.model.get("states");
    if (raw !== this.statesRaw) {
      this.statesRaw = raw;
      this.statesParsed = typeof raw === "string" ? JSON.parse(raw) : raw;
    }
    return this.statesParsed;
  }

  keyOf(values) {
    return this.model.get("controls").map((c) => keyPart(values[c.name])).join("|");
  }

  // -- controls and actions --
  buildControls() {
    this.controlsBox.replaceChildren();
    for (const spec of this.model.get("controls")) {
      const { wrap, input } = controlEl(spec, this.values[spec.name], (v) => {
        this.values = Object.assign({}, this.values, { [spec.name]: v });
        this.draw();
        this.model.set("values", this.values);
        this.model.save_changes();
      });
      this.inputs[spec.name] = input;
      this.controlsBox.appendChild(wrap);
    }
  }

  buildActions() {
    this.actionsBox.replaceChildren();
    const acts = this.model.get("actions") || [];
    for (const a of acts) {
      const box = el("span", "cnnx-action", this.actionsBox);
      const field = a.kind === "text" ? el("input", "", box, { type: "text", placeholder: a.placeholder || "" }) : null;
      if (field) {
        field.setAttribute("aria-label", a.label);
        field.dataset.actionField = a.name;
      }
      const button = el("button", "", box, { type: "button", textContent: a.label });
      button.dataset.action = a.name;
      if (a.help) button.title = a.help;
      button.addEventListener("click", () => {
        if (!this.hasKernel) return;
        this.setStatus("computing…");
        try {
          this.model.send({ type: "action", name: a.name, value: field ? field.value : null });
        } catch (err) {
          this.setStatus(String(err));
        }
      });
    }
    if (acts.length) el("span", "cnnx-status", this.actionsBox);
    this.setKernel(this.hasKernel);
  }

  setStatus(text) {
    const status = this.actionsBox.querySelector(".cnnx-status");
    if (status) status.textContent = text;
  }

  setKernel(live) {
    this.hasKernel = live;
    const inputs = this.actionsBox.querySelectorAll("button[data-action], input[data-action-field]");
    for (const b of inputs) b.disabled = !live;
    const status = this.actionsBox.querySelector(".cnnx-status");
    const note = this.model.get("needs_kernel");
    if (status && !live) status.textContent = note;
    if (status && live && status.textContent === note) status.textContent = "";
    this.root.dataset.kernel = live ? "yes" : "no";
  }

  onValues() {
    const v = this.model.get("values");
    if (this.keyOf(v) === this.keyOf(this.values)) return;
    this.values = Object.assign({}, v);
    for (const spec of this.model.get("controls")) {
      if (this.inputs[spec.name]) showControl(spec, this.inputs[spec.name], this.values[spec.name]);
    }
    this.draw();
  }

  onMsg(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "kernel") this.setKernel(true);
    if (msg.type === "error") this.setStatus(msg.text);
    if (msg.type === "done") this.setStatus("");
  }

  // -- drawing --
  draw() {
    const key = this.keyOf(this.values);
    const state = (this.state = this.allStates()[key]);
    this.root.dataset.key = key;
    this.heading.textContent = this.model.get("title");
    this.root.classList.toggle("cnnx-fixed", !!(state && state.fixed));
    if (!state || state.message) {
      this.panelsBox.innerHTML = state ? `<p class="cnnx-message">${richText(state.message)}</p>` : "";
      this.legendBox.innerHTML = this.caption.textContent = "";
      this.info.textContent = state ? "" : "no state for " + key;
      return;
    }
    const links = state.links || {};
    const readable = new Set(Object.keys(links).map((id) => id.split(":")[0]));
    this.panelsBox.innerHTML = state.panels.map((p) =>
      (p.newRow ? '<div class="cnnx-break"></div>' : "") + panelSVG(p, readable.has(p.id) || !!p.exact)).join("");
    this.legendBox.innerHTML = legendHTML(state.legend);
    this.caption.innerHTML = richText(state.caption || "");
    if (this.pinned && !this.readable(this.cellEl(this.pinned))) this.pinned = null;
    if (!this.pinned && state.focus && links[state.focus]) this.pinned = state.focus;
    this.follow(this.readable(this.cellEl(this.hovered)) ? this.hovered : this.pinned);
  }

  // -- links and highlight --
  cellEl(id) {
    if (!id) return null;
    const [pid, r, c] = id.split(":");
    const svg = this.panelsBox.querySelector(`svg[data-panel="${CSS.escape(pid)}"]`);
    return svg ? svg.querySelector(`g.cnnx-cell[data-r="${r}"][data-c="${c}"]`) : null;
  }

  // A link shared by several cells is stored once; the others hold that cell's id.
  linkOf(id) {
    const links = (this.state && this.state.links) || {};
    const lk = id ? links[id] : null;
    return typeof lk === "string" ? links[lk] : lk;
  }

  // A cell the reader can follow: it has a link, or a fuller value than it shows.
  readable(g) {
    return !!g && (!!this.linkOf(g.dataset.id) || g.dataset.exact !== undefined);
  }

  clearHighlight() {
    const lit = this.panelsBox.querySelectorAll("g.cnnx-cell.linked, g.cnnx-cell.cur");
    for (const g of lit) g.classList.remove("linked", "cur");
    for (const o of this.panelsBox.querySelectorAll("g.cnnx-overlay")) o.replaceChildren();
  }

  // Show what cell `id` links to (the cell, its cells, its windows) and its read-out.
  follow(id) {
    this.clearHighlight();
    const self = this.cellEl(id);
    const lk = this.linkOf(id);
    if (!self || !this.readable(self)) {
      this.readout(null);
      this.root.dataset.followed = "";
      return;
    }
    self.classList.add("cur");
    if (lk) {
      for (const c of lk.cells) {
        const g = this.cellEl(c);
        if (g && g !== self) g.classList.add("linked");
      }
      const panels = {};
      for (const p of this.state.panels) panels[p.id] = p;
      lk.windows.forEach((w, n) => {
        const svg = this.panelsBox.querySelector(`svg[data-panel="${CSS.escape(w[0])}"]`);
        if (panels[w[0]] && svg) {
          svg.querySelector("g.cnnx-overlay").insertAdjacentHTML("beforeend",
            windowRect(layout(panels[w[0]]), w, "cnnx-hlwin", 3 + 2 * (n % 4)));
        }
      });
    }
    this.readout(self, lk);
    this.root.dataset.followed = id;
  }

  // -- read-out --
  readout(g, lk) {
    const state = this.state;
    if (!g) {
      const hint = state && !state.fixed && state.links && Object.keys(state.links).length;
      this.info.innerHTML = hint ? "Hover, tap or use the arrow keys on a cell to follow its gradient." : "";
      return;
    }
    const parts = lk ? [richText(lk.text || "")] : [];
    if (g.dataset.exact !== undefined) {
      parts.push(`<span class="cnnx-exact">cell (${g.dataset.r}, ${g.dataset.c}): ${esc(g.dataset.exact)}</span>`);
    }
    this.info.innerHTML = parts.join(" ");
  }

  // -- pointer and keyboard: hover follows the pointer; a click (or tap) pins a cell; leaving the
  //    drawing returns to the pin.  A figure's followed cell stays pinned.
  pin(id) {
    if (this.state && this.state.fixed) this.hovered = id;
    else {
      this.pinned = id;
      this.hovered = null;
    }
    this.follow(id);
  }

  onOver(e) {
    const g = e.target.closest && e.target.closest("g.cnnx-cell");
    if (!this.readable(g)) return;
    this.hovered = g.dataset.id;
    this.follow(this.hovered);
  }

  onClick(e) {
    const g = e.target.closest && e.target.closest("g.cnnx-cell");
    if (this.readable(g)) this.pin(g.dataset.id);
  }

  // A focused panel moves its cursor with the arrow keys over the cells that can be followed.
  onKey(e) {
    const svg = e.target.closest && e.target.closest("svg.cnnx-panel");
    if (!svg || !this.state || !(e.key in MOVES)) return;
    e.preventDefault();
    const pid = svg.dataset.panel;
    const p = this.state.panels.find((q) => q.id === pid);
    const at = [this.hovered, this.pinned].find((id) => id && id.startsWith(pid + ":"));
    const ok = (r, c) => this.readable(svg.querySelector(`g.cnnx-cell[data-r="${r}"][data-c="${c}"]`));
    if (!at) {
      const first = Array.from(svg.querySelectorAll("g.cnnx-cell")).find((g) => this.readable(g));
      if (first) this.pin(first.dataset.id);
      return;
    }
    const [r, c] = at.split(":").slice(1).map(Number);
    const [dr, dc] = MOVES[e.key];
    for (let step = 1; step <= Math.max(p.rows, p.cols); step++) {
      const nr = r + dr * step, nc = c + dc * step;
      if (nr < 0 || nc < 0 || nr >= p.rows || nc >= p.cols) break;
      if (ok(nr, nc)) return this.pin(`${pid}:${nr}:${nc}`);
    }
  }

  start() {
    this.heading.textContent = this.model.get("title");
    this.buildControls();
    this.buildActions();
    this.draw();
    // Ask for a kernel: one answers at once; on a static page nobody does and actions stay disabled.
    try {
      this.model.send({ type: "hello" });
    } catch (err) {
      this.setKernel(false);
    }
  }
}

function render({ model, el: host }) {
  const view = new View(model, host);
  view.start();
  return () => view.dispose();
}

export default { render };
