// Every explorable and figure of the book holds this small module as its anywidget ES module.  The
// view itself (explorable.js and explorable.css) is stored once per notebook, in the ViewSource
// model that the widget's "source" names (cnnviz/explorable.py), so a page with many figures
// stores the view once: this loader fetches that model, imports the view once per page and puts
// its style sheet in the document once.
const views = (globalThis.__cnnxViews = globalThis.__cnnxViews || new Map());

async function sourceModel(model) {
  const ref = model.get("source");
  if (ref && typeof ref.get === "function") return ref;  // a manager that unpacks references
  return model.widget_manager.get_model(String(ref).replace(/^IPY_MODEL_/, ""));
}

async function loadView(model) {
  const source = await sourceModel(model);
  const css = source.get("css");
  let style = document.getElementById("cnnx-style");
  if (!style) {
    style = Object.assign(document.createElement("style"), { id: "cnnx-style" });
    document.head.appendChild(style);
  }
  if (style.textContent !== css) style.textContent = css;
  const esm = source.get("esm");
  if (!views.has(esm)) views.set(esm, import(URL.createObjectURL(new Blob([esm], { type: "text/javascript" }))));
  return (await views.get(esm)).default;
}

export default {
  async render({ model, el }) {
    const view = await loadView(model);
    return view.render({ model, el });
  },
};
