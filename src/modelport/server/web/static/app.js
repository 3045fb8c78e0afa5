// The few behaviours htmx does not cover: the theme toggle and the copy buttons.
(function () {
  "use strict";

  function effectiveTheme() {
    var set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function showTheme(button) {
    var dark = effectiveTheme() === "dark";
    button.setAttribute("aria-pressed", dark ? "true" : "false");
  }

  function setupTheme() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    showTheme(button);
    button.addEventListener("click", function () {
      var next = effectiveTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try {
        localStorage.setItem("modelport-theme", next);
      } catch (e) {
        /* not remembered, still applied */
      }
      showTheme(button);
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      showTheme(button);
    });
  }

  function say(button, text) {
    var status = document.getElementById(button.getAttribute("data-status") || "");
    if (status) status.textContent = text;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on another host is no secure context: the old way still copies.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    copyText(source.textContent).then(
      function () {
        say(button, "Copied " + button.getAttribute("data-what") + ".");
      },
      function () {
        say(button, "Could not copy: select the text and copy it.");
      }
    );
  });

  // On a phone the filters start folded, unless some are set: the table comes first.
  function foldFilters() {
    var facets = document.getElementById("facets");
    if (facets && !facets.hasAttribute("data-active") && window.matchMedia("(max-width: 52rem)").matches) {
      facets.open = false;
    }
  }

  function setup() {
    setupTheme();
    foldFilters();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
