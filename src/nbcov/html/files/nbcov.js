// nbcov HTML report: sorting and filtering on the index; missed-line navigation, outputs and
// "which tests ran this line" on notebook and module pages. User text is only ever set with
// textContent; nothing here builds HTML from strings.
(function () {
  "use strict";

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  function selectedTest() {
    var params = new URLSearchParams(window.location.search);
    return params.get("test") || "";
  }

  function typing(event) {
    var tag = event.target && event.target.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.ctrlKey || event.metaKey || event.altKey;
  }

  // -- index ----------------------------------------------------------------------------------------

  function initIndex() {
    var table = document.getElementById("index");
    var tbody = table.tBodies[0];
    var rows = all("tr", tbody);
    var headers = all("thead th", table);
    var filter = document.getElementById("filter");
    var testFilter = document.getElementById("test-filter");

    headers.forEach(function (th, column) {
      var button = th.querySelector("button");
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var numeric = th.getAttribute("data-sort") === "n";
        var sorted = rows.slice().sort(function (a, b) {
          var x = a.cells[column].getAttribute("data-v") || "";
          var y = b.cells[column].getAttribute("data-v") || "";
          var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          if (order === 0) {
            order = a.cells[0].getAttribute("data-v").localeCompare(b.cells[0].getAttribute("data-v"));
          }
          return ascending ? order : -order;
        });
        sorted.forEach(function (row) { tbody.appendChild(row); });
      });
    });

    function counts(row) {
      var map = {};
      (row.getAttribute("data-tests") || "").split(" ").forEach(function (pair) {
        if (pair) {
          var parts = pair.split(":");
          map[parts[0]] = parseInt(parts[1], 10);
        }
      });
      return map;
    }

    function apply() {
      var text = filter.value.trim().toLowerCase();
      var test = testFilter ? testFilter.value : "";
      var name = test && testFilter.options[testFilter.selectedIndex].textContent;
      var shown = 0;
      document.body.classList.toggle("filtering", !!test);
      rows.forEach(function (row) {
        var visible = row.cells[0].getAttribute("data-v").toLowerCase().indexOf(text) !== -1;
        var link = row.querySelector("td.name a");
        var base = link.getAttribute("href").split("?")[0];
        if (test) {
          var n = counts(row)[test] || 0;
          var stmts = parseInt(row.getAttribute("data-stmts"), 10);
          var cell = row.querySelector("td.by-test");
          cell.textContent = n + " of " + stmts;
          cell.setAttribute("data-v", String(stmts ? n / stmts : 0));
          visible = visible && n > 0;
          link.setAttribute("href", base + "?test=" + encodeURIComponent(name));
        } else {
          link.setAttribute("href", base);
        }
        row.hidden = !visible;
        if (visible) { shown += 1; }
      });
      document.getElementById("no-rows").hidden = shown > 0;
      var query = name ? "?test=" + encodeURIComponent(name) : "";
      if (window.location.search !== query) {
        window.history.replaceState(null, "", window.location.pathname + query);
      }
    }

    filter.addEventListener("input", apply);
    if (testFilter) {
      var wanted = selectedTest();
      all("option", testFilter).forEach(function (option) {
        if (option.value && option.textContent === wanted) { testFilter.value = option.value; }
      });
      testFilter.addEventListener("change", apply);
    }
    apply();
  }

  // -- notebook and module pages ------------------------------------------------------------------------

  var namesCache = new WeakMap();

  function contextNames(line) {
    var src = line.closest(".src");
    if (!src || !src.hasAttribute("data-contexts")) { return []; }
    if (!namesCache.has(src)) {
      var names = [];
      try { names = JSON.parse(src.getAttribute("data-contexts")); } catch (e) { names = []; }
      namesCache.set(src, names);
    }
    return namesCache.get(src);
  }

  function lineContexts(line) {
    var names = contextNames(line);
    return (line.getAttribute("data-c") || "").split(" ").filter(Boolean).map(function (i) {
      return names[parseInt(i, 10)];
    });
  }

  function describe(line) {
    var cell = line.closest(".cell");
    var where = "Line " + line.querySelector(".n").textContent;
    if (cell) { where += " of " + cell.querySelector(".cellno").textContent.toLowerCase(); }
    return where;
  }

  function showContexts(line) {
    var panel = document.getElementById("ctx-panel");
    if (!panel) {
      panel = document.createElement("aside");
      panel.id = "ctx-panel";
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-label", "tests that ran this line");
      document.body.appendChild(panel);
    }
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.textContent = "×";
    close.setAttribute("aria-label", "close");
    close.addEventListener("click", function () { panel.hidden = true; });
    var names = lineContexts(line);
    var title = document.createElement("h3");
    title.textContent = describe(line) + " ran in " + names.length + (names.length === 1 ? " context:" : " contexts:");
    var list = document.createElement("ul");
    names.forEach(function (name) {
      var item = document.createElement("li");
      item.textContent = name;
      list.appendChild(item);
    });
    panel.appendChild(close);
    panel.appendChild(title);
    panel.appendChild(list);
    panel.hidden = false;
  }

  function initFile() {
    var targets = all(".src .l.mis:not(.c), .src .l.par:not(.c)");
    var current = -1;

    function mark(index) {
      if (!targets.length) { return; }
      current = Math.max(0, Math.min(targets.length - 1, index));
      all(".src .l.cur").forEach(function (line) { line.classList.remove("cur"); });
      var line = targets[current];
      line.classList.add("cur");
      line.scrollIntoView({ block: "center" });
      window.history.replaceState(null, "", window.location.pathname + window.location.search + "#" + line.id);
    }

    function step(delta) {
      if (current === -1 && delta < 0) { mark(targets.length - 1); return; }
      mark(current + delta);
    }

    var hashed = window.location.hash ? document.getElementById(decodeURIComponent(window.location.hash.slice(1))) : null;
    if (hashed && hashed.classList.contains("l")) {
      hashed.classList.add("cur");
      var at = targets.indexOf(hashed);
      if (at !== -1) { current = at; }
    }

    var next = document.getElementById("next-missed");
    var prev = document.getElementById("prev-missed");
    if (next) { next.addEventListener("click", function () { step(1); }); }
    if (prev) { prev.addEventListener("click", function () { step(-1); }); }

    var toggle = document.getElementById("toggle-outputs");
    function toggleOutputs() {
      if (!toggle) { return; }
      var open = toggle.getAttribute("aria-pressed") !== "true";
      all("details.outputs").forEach(function (d) { d.open = open; });
      toggle.setAttribute("aria-pressed", open ? "true" : "false");
      toggle.textContent = open ? "hide outputs" : "show outputs";
    }
    if (toggle) { toggle.addEventListener("click", toggleOutputs); }

    document.addEventListener("keydown", function (event) {
      if (typing(event)) { return; }
      if (event.key === "j" || event.key === "n") { step(1); event.preventDefault(); }
      else if (event.key === "k" || event.key === "p") { step(-1); event.preventDefault(); }
      else if (event.key === "o") { toggleOutputs(); }
      else if (event.key === "u") { window.location.href = "index.html" + window.location.search; }
      else if (event.key === "Escape") {
        var panel = document.getElementById("ctx-panel");
        if (panel) { panel.hidden = true; }
      }
    });

    document.addEventListener("click", function (event) {
      var line = event.target.closest && event.target.closest(".src .l[data-c]");
      if (line) { showContexts(line); }
    });
    document.addEventListener("mouseover", function (event) {
      var line = event.target.closest && event.target.closest(".src .l[data-c]");
      if (line && !line.hasAttribute("title")) {
        line.setAttribute("title", "Ran in: " + lineContexts(line).join(", ") + " (click for the list)");
      }
    });

    var testFilter = document.getElementById("test-filter");
    function highlight(test) {
      document.body.classList.toggle("filtering", !!test);
      all(".src").forEach(function (src) {
        var lines = all(".l", src);
        if (!test) {
          lines.forEach(function (line) { line.classList.remove("hit", "dim"); });
          return;
        }
        var index = src.hasAttribute("data-contexts") ? contextNames(lines[0] || src).indexOf(test) : -1;
        lines.forEach(function (line) {
          var ids = (line.getAttribute("data-c") || "").split(" ");
          var hit = index !== -1 && ids.indexOf(String(index)) !== -1;
          line.classList.toggle("hit", hit);
          line.classList.toggle("dim", !hit);
        });
      });
    }
    if (testFilter) {
      var wanted = selectedTest();
      all("option", testFilter).forEach(function (option) {
        if (option.textContent === wanted) { testFilter.value = option.value || option.textContent; }
      });
      testFilter.addEventListener("change", function () {
        var test = testFilter.value;
        var query = test ? "?test=" + encodeURIComponent(test) : "";
        window.history.replaceState(null, "", window.location.pathname + query + window.location.hash);
        highlight(test);
      });
      highlight(testFilter.value);
    }
  }

  document.documentElement.classList.add("js");
  if (document.body.classList.contains("index")) {
    initIndex();
  } else {
    initFile();
  }
})();
