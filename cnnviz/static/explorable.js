// The book's explorables: one view for all of them (cnnviz/explorable.py computes the states).
//
// The model holds every state of the control grid ("states", keyed by the control values joined
// with "|"), so a control redraws from memory, with or without a kernel.  Hovering a cell, clicking
// it or reaching it with the arrow keys shows what it is linked to (state.links).  Actions (a new
// random draw, a typed matrix) are sent to the kernel, which replaces the states; without a kernel
// they say so.
//
// DOM contract (the browser tests rely on it): the root is div.cnnx[data-kind][data-key]; controls
// carry data-control="<name>"; action buttons data-action="<name>"; each panel is
// svg[data-panel="<id>"] whose cells are g.cnnx-cell[data-r][data-c] holding one <text>.

const NS = "http://www.w3.org/2000/svg";
const CELL = 34;      // px per cell in the SVG's own units (it scales down with the page)
const TITLE_H = 22;

function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// Captions and link texts may carry a few inline tags; everything else is escaped.
function richText(s) {
  return esc(s).replace(/&lt;(\/?)(b|i|sub|sup|code|br)&gt;/g, "<$1$2>");
}

function keyPart(v) {
  if (v === true) return "true";
  if (v === false) return "false";
  return String(v);
}

function fillStyle(panel, f) {
  if (f === null || f === undefined || panel.scale === "none") return "";
  if (panel.scale === "div") {
    if (f === 0) return "";
    const a = Math.min(1, Math.abs(f)) * 0.85;
    return f > 0 ? `fill: rgba(var(--cnnx-pos-rgb), ${a.toFixed(3)})` : `fill: rgba(var(--cnnx-neg-rgb), ${a.toFixed(3)})`;
  }
  return `fill: rgba(var(--cnnx-seq-rgb), ${(0.08 + 0.55 * f).toFixed(3)})`;
}

function panelSize(p) {
  const left = p.rowLabels ? 26 : 4;
  const top = TITLE_H + (p.colLabels ? 16 : 4);
  // Wide enough for the title too (about 7 px per character of the 12 px bold title font).
  const width = Math.max(left + p.cols * CELL + 4, Math.ceil(7.2 * String(p.title).length) + left + 4);
  return { left, top, width, height: top + p.rows * CELL + 4 };
}

function panelSVG(p) {
  const { left, top, width, height } = panelSize(p);
  const out = [];
  out.push(`<svg xmlns="${NS}" class="cnnx-panel" data-panel="${esc(p.id)}" viewBox="0 0 ${width} ${height}" ` +
    `width="${width}" height="${height}" role="group" aria-label="${esc(p.title)}" tabindex="0">`);
  out.push(`<text class="cnnx-title" x="${left}" y="15">${esc(p.title)}</text>`);
  if (p.colLabels) p.colLabels.forEach((s, c) =>
    out.push(`<text class="cnnx-axis" x="${left + c * CELL + CELL / 2}" y="${top - 4}">${esc(s)}</text>`));
  if (p.rowLabels) p.rowLabels.forEach((s, r) =>
    out.push(`<text class="cnnx-axis" x="${left - 12}" y="${top + r * CELL + CELL / 2 + 4}">${esc(s)}</text>`));
  for (let r = 0; r < p.rows; r++) {
    for (let c = 0; c < p.cols; c++) {
      const cls = p.classes ? p.classes[r][c] : "";
      const x = left + c * CELL, y = top + r * CELL;
      const t = p.text[r][c];
      const small = t.length > 4 ? " cnnx-small" : "";
      out.push(`<g class="cnnx-cell ${esc(cls)}" data-r="${r}" data-c="${c}" data-id="${esc(p.id)}:${r}:${c}">` +
        `<rect x="${x}" y="${y}" width="${CELL}" height="${CELL}" style="${fillStyle(p, p.fill[r][c])}"></rect>` +
        `<text class="cnnx-num${small}" x="${x + CELL / 2}" y="${y + CELL / 2 + 4}">${esc(t)}</text></g>`);
    }
  }
  out.push(`<g class="cnnx-windows">`);
  for (const w of p.windows || []) out.push(windowRect(p, w, "cnnx-window"));
  out.push(`</g><g class="cnnx-overlay"></g></svg>`);
  return out.join("");
}

function windowRect(p, w, base) {
  const { left, top } = panelSize(p);
  const [, r, c, h, wd, cls] = w;
  const inset = 2;
  return `<rect class="${base} ${esc(cls || "")}" x="${left + c * CELL + inset}" y="${top + r * CELL + inset}" ` +
    `width="${wd * CELL - 2 * inset}" height="${h * CELL - 2 * inset}"></rect>`;
}

function controlEl(spec, value, onChange) {
  const wrap = document.createElement("label");
  wrap.className = "cnnx-control cnnx-" + spec.kind;
  if (spec.help) wrap.title = spec.help;
  const name = document.createElement("span");
  name.className = "cnnx-label";
  name.textContent = spec.label;
  wrap.appendChild(name);
  const idx = Math.max(0, spec.keys.indexOf(keyPart(value)));
  let input, readout = null;
  if (spec.kind === "slider") {
    input = document.createElement("input");
    input.type = "range";
    input.min = "0";
    input.max = String(spec.options.length - 1);
    input.step = "1";
    input.value = String(idx);
    readout = document.createElement("output");
    readout.className = "cnnx-readout";
    readout.textContent = spec.labels[idx];
    input.setAttribute("aria-valuetext", spec.labels[idx]);
    input.addEventListener("input", () => {
      const i = Number(input.value);
      readout.textContent = spec.labels[i];
      input.setAttribute("aria-valuetext", spec.labels[i]);
      onChange(spec.options[i]);
    });
  } else if (spec.kind === "select") {
    input = document.createElement("select");
    spec.options.forEach((o, i) => {
      const opt = document.createElement("option");
      opt.value = String(i);
      opt.textContent = spec.labels[i];
      input.appendChild(opt);
    });
    input.value = String(idx);
    input.addEventListener("change", () => onChange(spec.options[Number(input.value)]));
  } else {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = value === true;
    input.addEventListener("change", () => onChange(input.checked));
  }
  input.dataset.control = spec.name;
  wrap.appendChild(input);
  if (readout) wrap.appendChild(readout);
  return { wrap, input, readout };
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "cnnx";
  root.dataset.kind = model.get("kind");
  root.setAttribute("role", "figure");
  el.appendChild(root);

  const title = document.createElement("div");
  title.className = "cnnx-heading";
  root.appendChild(title);
  const controlsBox = document.createElement("div");
  controlsBox.className = "cnnx-controls";
  root.appendChild(controlsBox);
  const actionsBox = document.createElement("div");
  actionsBox.className = "cnnx-actions";
  root.appendChild(actionsBox);
  const panelsBox = document.createElement("div");
  panelsBox.className = "cnnx-panels";
  root.appendChild(panelsBox);
  const info = document.createElement("div");
  info.className = "cnnx-info";
  info.setAttribute("aria-live", "polite");
  root.appendChild(info);
  const caption = document.createElement("div");
  caption.className = "cnnx-caption";
  root.appendChild(caption);

  // The states arrive as one JSON text (parsed once per change; a plain object is taken as is).
  let statesRaw = null, statesParsed = null;
  function allStates() {
    const raw = model.get("states");
    if (raw !== statesRaw) {
      statesRaw = raw;
      statesParsed = typeof raw === "string" ? JSON.parse(raw) : raw;
    }
    return statesParsed;
  }

  let values = Object.assign({}, model.get("values"));
  let pinned = null;       // the followed cell id, kept across redraws when it still exists
  let hovered = null;
  let hasKernel = false;
  let state = null;
  const inputs = {};

  // JupyterLab's notebook shortcuts must not eat the keys a reader uses on the controls.
  const stop = (e) => e.stopPropagation();
  root.addEventListener("keydown", stop);

  function currentKey() {
    return model.get("controls").map((c) => keyPart(values[c.name])).join("|");
  }

  function buildControls() {
    controlsBox.replaceChildren();
    for (const spec of model.get("controls")) {
      const { wrap, input } = controlEl(spec, values[spec.name], (v) => {
        values = Object.assign({}, values, { [spec.name]: v });
        draw();
        model.set("values", values);
        model.save_changes();
      });
      inputs[spec.name] = input;
      controlsBox.appendChild(wrap);
    }
  }

  function buildActions() {
    actionsBox.replaceChildren();
    const acts = model.get("actions") || [];
    if (!acts.length) return;
    for (const a of acts) {
      const box = document.createElement("span");
      box.className = "cnnx-action";
      let field = null;
      if (a.kind === "text") {
        field = document.createElement("input");
        field.type = "text";
        field.placeholder = a.placeholder || "";
        field.setAttribute("aria-label", a.label);
        field.dataset.actionField = a.name;
        box.appendChild(field);
      }
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = a.label;
      button.dataset.action = a.name;
      if (a.help) button.title = a.help;
      button.addEventListener("click", () => {
        if (!hasKernel) return;
        status.textContent = "computing…";
        try {
          model.send({ type: "action", name: a.name, value: field ? field.value : null });
        } catch (err) {
          status.textContent = String(err);
        }
      });
      box.appendChild(button);
      actionsBox.appendChild(box);
    }
    const status = document.createElement("span");
    status.className = "cnnx-status";
    actionsBox.appendChild(status);
    setKernel(hasKernel);
  }

  function setKernel(live) {
    hasKernel = live;
    for (const b of actionsBox.querySelectorAll("button[data-action], input[data-action-field]")) {
      b.disabled = !live;
    }
    const status = actionsBox.querySelector(".cnnx-status");
    if (status && !live) status.textContent = model.get("needs_kernel");
    if (status && live && status.textContent === model.get("needs_kernel")) status.textContent = "";
    root.dataset.kernel = live ? "yes" : "no";
  }

  function cellEl(id) {
    const [pid, r, c] = id.split(":");
    const svg = panelsBox.querySelector(`svg[data-panel="${CSS.escape(pid)}"]`);
    return svg ? svg.querySelector(`g.cnnx-cell[data-r="${r}"][data-c="${c}"]`) : null;
  }

  function clearHighlight() {
    for (const g of panelsBox.querySelectorAll("g.cnnx-cell.hl, g.cnnx-cell.cur")) g.classList.remove("hl", "cur");
    for (const o of panelsBox.querySelectorAll("g.cnnx-overlay")) o.replaceChildren();
  }

  // A link shared by several cells is stored once; the others hold that cell's id.
  function linkOf(id) {
    const lk = id && state && state.links ? state.links[id] : null;
    return typeof lk === "string" ? state.links[lk] : lk;
  }

  function showLink(id) {
    clearHighlight();
    const lk = linkOf(id);
    if (!id || !lk) {
      info.innerHTML = state && state.links && Object.keys(state.links).length
        ? "Hover, tap or use the arrow keys on a cell to follow its gradient." : "";
      root.dataset.followed = "";
      return;
    }
    const self = cellEl(id);
    if (self) self.classList.add("cur");
    for (const c of lk.cells) {
      const g = cellEl(c);
      if (g) g.classList.add("hl");
    }
    const panels = {};
    for (const p of state.panels) panels[p.id] = p;
    for (const w of lk.windows) {
      const p = panels[w[0]];
      const svg = panelsBox.querySelector(`svg[data-panel="${CSS.escape(w[0])}"]`);
      if (!p || !svg) continue;
      svg.querySelector("g.cnnx-overlay").insertAdjacentHTML("beforeend",
        windowRect(p, w, "cnnx-hlwin"));
    }
    info.innerHTML = richText(lk.text || "");
    root.dataset.followed = id;
  }

  function draw() {
    const key = currentKey();
    state = allStates()[key];
    root.dataset.key = key;
    title.textContent = model.get("title");
    if (!state) {
      panelsBox.innerHTML = "";
      caption.textContent = "";
      info.textContent = "no state for " + key;
      return;
    }
    if (state.message) {
      panelsBox.innerHTML = `<p class="cnnx-message">${richText(state.message)}</p>`;
      caption.textContent = "";
      info.textContent = "";
      return;
    }
    panelsBox.innerHTML = state.panels.map(panelSVG).join("");
    caption.innerHTML = richText(state.caption || "");
    const links = state.links || {};
    if (pinned && !links[pinned]) pinned = null;
    if (!pinned && state.focus && links[state.focus]) pinned = state.focus;
    showLink(hovered && links[hovered] ? hovered : pinned);
  }

  // Hover follows the pointer; a click (or tap) pins a cell; leaving the drawing returns to the pin.
  panelsBox.addEventListener("mouseover", (e) => {
    const g = e.target.closest && e.target.closest("g.cnnx-cell");
    if (!g || !state || !state.links || !state.links[g.dataset.id]) return;
    hovered = g.dataset.id;
    showLink(hovered);
  });
  panelsBox.addEventListener("mouseleave", () => {
    hovered = null;
    showLink(pinned);
  });
  panelsBox.addEventListener("click", (e) => {
    const g = e.target.closest && e.target.closest("g.cnnx-cell");
    if (!g || !state || !state.links || !state.links[g.dataset.id]) return;
    pinned = g.dataset.id;
    hovered = null;
    showLink(pinned);
  });
  // Keyboard: a focused panel moves its cursor with the arrow keys over the cells that have links.
  panelsBox.addEventListener("keydown", (e) => {
    const svg = e.target.closest && e.target.closest("svg.cnnx-panel");
    if (!svg || !state || !state.links) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const pid = svg.dataset.panel;
    const p = state.panels.find((q) => q.id === pid);
    let [r, c] = [0, 0];
    if (pinned && pinned.startsWith(pid + ":")) [r, c] = pinned.split(":").slice(1).map(Number);
    else {
      const first = Object.keys(state.links).find((k) => k.startsWith(pid + ":"));
      if (first) { pinned = first; hovered = null; showLink(pinned); return; }
    }
    const [dr, dc] = moves[e.key];
    for (let step = 1; step <= Math.max(p.rows, p.cols); step++) {
      const nr = r + dr * step, nc = c + dc * step;
      if (nr < 0 || nc < 0 || nr >= p.rows || nc >= p.cols) break;
      const id = `${pid}:${nr}:${nc}`;
      if (state.links[id]) { pinned = id; hovered = null; showLink(pinned); break; }
    }
  });

  const onStates = () => {
    const status = actionsBox.querySelector(".cnnx-status");
    if (status && hasKernel) status.textContent = "";
    draw();
  };
  const onControls = () => {
    values = Object.assign({}, model.get("values"));
    buildControls();
    draw();
  };
  const onValues = () => {
    const v = model.get("values");
    if (currentKeyOf(v) === currentKey()) return;
    values = Object.assign({}, v);
    for (const spec of model.get("controls")) {
      const input = inputs[spec.name];
      if (!input) continue;
      const i = Math.max(0, spec.keys.indexOf(keyPart(values[spec.name])));
      if (spec.kind === "toggle") input.checked = values[spec.name] === true;
      else input.value = String(i);
      const out = input.parentElement.querySelector("output");
      if (out) out.textContent = spec.labels[i];
    }
    draw();
  };
  function currentKeyOf(v) {
    return model.get("controls").map((c) => keyPart(v[c.name])).join("|");
  }
  const onMsg = (msg) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "kernel") setKernel(true);
    const status = actionsBox.querySelector(".cnnx-status");
    if (msg.type === "error" && status) status.textContent = msg.text;
    if (msg.type === "done" && status) status.textContent = "";
  };
  model.on("change:states", onStates);
  model.on("change:controls", onControls);
  model.on("change:values", onValues);
  model.on("msg:custom", onMsg);

  title.textContent = model.get("title");
  buildControls();
  buildActions();
  draw();
  // Ask for a kernel: one answers at once; on a static page nobody does and actions stay disabled.
  try {
    model.send({ type: "hello" });
  } catch (err) {
    setKernel(false);
  }

  return () => {
    model.off("change:states", onStates);
    model.off("change:controls", onControls);
    model.off("change:values", onValues);
    model.off("msg:custom", onMsg);
  };
}

export default { render };
