// Keyboard shortcuts of the review page. Every action submits one of the page's forms,
// so the server (with its CSRF token and version check) stays the only place that decides.
(function () {
  "use strict";
  var focused = null; // the code row whose direction +, -, 0 set

  function submit(id) {
    var form = document.getElementById(id);
    if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) { window.location.assign(link.getAttribute("href")); }
  }

  function row(key) {
    return document.querySelector('tr.code-row[data-key="' + key + '"]');
  }

  function mark(target) {
    document.querySelectorAll("tr.code-row.focused").forEach(function (r) { r.classList.remove("focused"); });
    focused = target;
    if (target) { target.classList.add("focused"); }
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
    else if (key === "Enter") { submit("correct-form"); }
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
  });
})();
