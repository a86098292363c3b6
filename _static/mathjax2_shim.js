// The Jupyter widget manager of the static pages (@jupyter-widgets/html-manager, up to 1.0.15)
// typesets widget labels with MathJax 2's `MathJax.Hub.Queue(["Typeset", MathJax.Hub, el])`;
// the book loads MathJax 3, which has no `Hub`, so every widget page would throw
// "Cannot read properties of undefined (reading 'Queue')". This shim gives whatever object is
// `window.MathJax` (the configuration before MathJax 3 starts, MathJax 3 itself after) a small,
// non-enumerable `Hub` whose Queue/Typeset forward to MathJax 3's `typesetPromise`.
// Jupyter Book adds every script in _static/ to every page, ahead of MathJax and the widgets.
(function () {
  "use strict";
  var loaded;  // resolves with MathJax 3 once its startup has finished
  var announce;
  loaded = new Promise(function (resolve) { announce = resolve; });

  function whenReady() {
    return loaded.then(function (mj) { return mj.startup && mj.startup.promise; })
      .then(function () { return window.MathJax; });
  }

  function typeset(elements) {
    return whenReady().then(function (mj) {
      if (!mj.typesetPromise) return undefined;
      var list = elements == null ? undefined : [].concat(elements);
      return mj.typesetPromise(list);
    });
  }

  var chain = Promise.resolve();
  function run(item) {
    if (typeof item === "function") return item();
    if (!Array.isArray(item) || item.length === 0) return undefined;
    var action = item[0], that = item[1], args = item.slice(2);
    if (action === "Typeset") return typeset(args[0]);
    if (typeof action === "function") return action.apply(that, args);
    if (typeof action === "string" && that && typeof that[action] === "function") return that[action].apply(that, args);
    return undefined;
  }

  var hub = {
    Queue: function () {
      var items = Array.prototype.slice.call(arguments);
      chain = chain.then(function () {
        return items.reduce(function (done, item) {
          return done.then(function () { return run(item); });
        }, Promise.resolve());
      }).catch(function (err) { console.error("MathJax (2 to 3 shim):", err); });
      return chain;
    },
    Typeset: function (element, callback) {
      return hub.Queue(["Typeset", hub, element], callback || function () {});
    },
    Config: function () {},
    Configured: function () {},
    Register: { StartupHook: function () {}, MessageHook: function () {}, LoadHook: function () {} },
  };

  function withHub(mj) {
    if (mj && typeof mj === "object" && !Object.prototype.hasOwnProperty.call(mj, "Hub")) {
      Object.defineProperty(mj, "Hub", { value: hub, enumerable: false, configurable: true, writable: true });
    }
    if (mj && mj.version) announce(mj);  // MathJax 3 replaces the configuration object
    return mj;
  }

  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
})();
