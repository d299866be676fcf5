// The selector fixer's picker, inlined (under the frame's CSP nonce) into a parked page that
// the console serves in a sandboxed frame with an opaque origin: it outlines the element
// under the pointer, swallows clicks (no link, form or navigation ever runs) and tells the
// console which numbered element was clicked. The site's own scripts were removed.
(function () {
  "use strict";
  var style = document.createElement("style");
  style.textContent = "[data-hitl-hover]{outline:2px dashed #d9480f!important;cursor:crosshair!important}" +
    "[data-hitl-mark]{outline:2px solid #2b8a3e!important;background:rgba(43,138,62,.15)!important}" +
    "[data-hitl-picked]{outline:3px solid #1864ab!important}";
  (document.head || document.documentElement).appendChild(style);
  var hovered = null;
  function mark(node, name, on) {
    if (node && node.setAttribute) { if (on) node.setAttribute(name, ""); else node.removeAttribute(name); }
  }
  document.addEventListener("mouseover", function (e) {
    mark(hovered, "data-hitl-hover", false);
    hovered = e.target;
    mark(hovered, "data-hitl-hover", true);
  }, true);
  function stop(e) { e.preventDefault(); e.stopPropagation(); }
  document.addEventListener("click", function (e) {
    stop(e);
    var node = e.target && e.target.closest ? e.target.closest("[data-hitl-i]") : null;
    if (!node) return;
    document.querySelectorAll("[data-hitl-picked]").forEach(function (n) { mark(n, "data-hitl-picked", false); });
    mark(node, "data-hitl-picked", true);
    parent.postMessage({ type: "hitl-pick", index: Number(node.getAttribute("data-hitl-i")),
      tag: node.tagName.toLowerCase(), text: (node.textContent || "").trim().slice(0, 120) }, "*");
  }, true);
  ["submit", "auxclick", "dblclick", "dragstart"].forEach(function (t) { document.addEventListener(t, stop, true); });
  window.addEventListener("message", function (e) {
    if (e.source !== parent || !e.data || e.data.type !== "hitl-mark") return;
    document.querySelectorAll("[data-hitl-mark]").forEach(function (n) { mark(n, "data-hitl-mark", false); });
    (e.data.indices || []).forEach(function (i) {
      mark(document.querySelector('[data-hitl-i="' + Number(i) + '"]'), "data-hitl-mark", true);
    });
  });
})();
