// Keyboard shortcuts and the codebook panel of the review pages. Every action submits one of
// the page's forms, so the server (with its CSRF token and version check) stays the only place
// that decides.
(function () {
  "use strict";
  var focused = null; // the code row whose direction +, -, 0 set

  function submit(id) {
    var form = document.getElementById(id);
    if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); return true; }
    return false;
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) { window.location.assign(link.getAttribute("href")); }
  }

  function row(key) {
    return document.querySelector('tr.code-row[data-key="' + key + '"]');
  }

  // The codebook panel shows the definition, include and exclude text of one code.
  function showCode(code) {
    var panel = document.getElementById("codebook-panel");
    if (!panel || !code) { return; }
    var info = document.getElementById("info-" + code);
    if (!info) { return; }
    panel.querySelectorAll(".code-info").forEach(function (el) { el.hidden = el !== info; });
    var hint = document.getElementById("codebook-hint");
    if (hint) { hint.hidden = true; }
  }

  function mark(target) {
    document.querySelectorAll("tr.code-row.focused").forEach(function (r) { r.classList.remove("focused"); });
    focused = target;
    if (target) { target.classList.add("focused"); showCode(target.getAttribute("data-code")); }
  }

  function setDirection(value) {
    if (!focused) { return; }
    var box = focused.querySelector('input[type="checkbox"]');
    if (box && !box.checked) { box.checked = true; }
    var radio = focused.querySelector('input[type="radio"][value="' + value + '"]');
    if (radio) { radio.checked = true; }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" && event.target.type !== "checkbox" && event.target.type !== "radio") { return; }
    if (tag === "TEXTAREA" || tag === "SELECT") { return; }
    if (event.key === "Enter" && (tag === "BUTTON" || tag === "A")) { return; }
    var key = event.key;
    var handled = true;
    if (key === "a") { submit("accept-form"); }
    else if (key === "s") { submit("skip-form"); }
    else if (key === "u") { submit("undo-form"); }
    else if (key === "j") { follow("next"); }
    else if (key === "k") { follow("prev"); }
    else if (key === "Enter") { if (!submit("correct-form")) { submit("start-form"); } }
    else if (key === "f") {
      var first = document.getElementById("filter-municipality");
      if (first) { first.focus(); first.select(); } else { handled = false; }
    }
    else if (key === "+" || key === "=") { setDirection("+"); }
    else if (key === "-" || key === "_") { setDirection("-"); }
    else if (key === "0") { setDirection("0"); }
    else if (/^[1-9]$/.test(key)) {
      var target = row(key);
      if (target) {
        var box = target.querySelector('input[type="checkbox"]');
        if (box) { box.checked = !box.checked; }
        mark(target);
      }
    }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  });

  document.addEventListener("change", function (event) {
    var target = event.target.closest && event.target.closest("tr.code-row");
    if (target) { mark(target); }
    if (event.target.id === "code-select") { showCode(event.target.value); }
  });

  // Pointing at a code (a row, a chip in the margin or the queue list) shows it in the panel.
  document.addEventListener("mouseover", function (event) {
    var target = event.target.closest && event.target.closest("[data-code]");
    if (target && !target.classList.contains("code-info")) { showCode(target.getAttribute("data-code")); }
  });
  document.addEventListener("focusin", function (event) {
    var target = event.target.closest && event.target.closest("tr.code-row");
    if (target) { showCode(target.getAttribute("data-code")); }
  });

  // The transcript page: a selection within one utterance (or its "codeer" link) fills the form.
  function chooseUtterance(utteranceId, start, end, quote) {
    var field = document.getElementById("code-utterance");
    if (!field) { return; }
    field.value = utteranceId;
    document.getElementById("span-start").value = start === null ? "" : String(start);
    document.getElementById("span-end").value = end === null ? "" : String(end);
    document.getElementById("selection-quote").textContent = quote ? "“" + quote + "”" : "De hele uiting.";
    document.querySelectorAll(".line.chosen").forEach(function (l) { l.classList.remove("chosen"); });
    var line = document.getElementById("u" + utteranceId);
    if (line) { line.classList.add("chosen"); }
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.code-this");
    if (!link) { return; }
    event.preventDefault();
    chooseUtterance(link.getAttribute("data-utterance"), null, null, "");
    var select = document.getElementById("code-select");
    if (select) { select.focus(); }
  });

  document.addEventListener("mouseup", function () {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed || selection.rangeCount === 0) { return; }
    var range = selection.getRangeAt(0);
    var holder = range.commonAncestorContainer;
    if (holder.nodeType !== 1) { holder = holder.parentElement; }
    var text = holder && holder.closest ? holder.closest("p.utt-text") : null;
    if (!text) { return; }
    var before = document.createRange();
    before.selectNodeContents(text);
    before.setEnd(range.startContainer, range.startOffset);
    var start = before.toString().length;
    var quote = range.toString();
    if (!quote.trim()) { return; }
    chooseUtterance(text.getAttribute("data-utterance"), start, start + quote.length, quote);
  });
})();
