// Code on paper: each line of a code box becomes its own block (span.cnn-line) so that a line
// too long for the paper wraps whole, its later parts indented under its start (book.css,
// @media print), and the space after a comment's "#" does not break, so "#" never ends a line
// alone. Runs before the page is printed (the browser's print, and scripts/book_pdf.py, which
// calls window.cnnBookPrintLines() itself). On screen the lines look as before.
(function () {
  function splitLines(pre) {
    if (pre.dataset.cnnLines) return;
    const segments = [];  // [text, className of the innermost element]
    const walk = (node, cls) => {
      for (const child of node.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) segments.push([child.textContent, cls]);
        else if (child.nodeType === Node.ELEMENT_NODE) walk(child, child.getAttribute("class") || cls);
      }
    };
    walk(pre, "");
    const lines = [[]];
    for (const [text, cls] of segments) {
      text.split("\n").forEach((part, i) => {
        if (i) lines.push([]);
        if (part) lines[lines.length - 1].push([part, cls]);
      });
    }
    if (lines.length > 1 && !lines[lines.length - 1].length) lines.pop();
    const out = document.createDocumentFragment();
    for (const line of lines) {
      const el = document.createElement("span");
      el.className = "cnn-line";
      // the line's own indentation: its later parts go 4 characters further in
      const indent = /^ */.exec(line.map((s) => s[0]).join(""))[0].length;
      if (indent) el.style.setProperty("--cnn-indent", indent + "ch");
      for (const [text, cls] of line) {
        const span = document.createElement("span");
        if (cls) span.className = cls;
        span.textContent = /^c/.test(cls) ? text.replace(/^(#+) /, "$1\u00a0") : text;
        el.appendChild(span);
      }
      if (!line.length) el.textContent = "\u200b";  // an empty line keeps its height
      out.appendChild(el);
    }
    pre.textContent = "";
    pre.appendChild(out);
    pre.dataset.cnnLines = "1";
  }
  window.cnnBookPrintLines = function () {
    document.querySelectorAll(".bd-content div.highlight > pre").forEach(splitLines);
  };
  window.addEventListener("beforeprint", window.cnnBookPrintLines);
})();
