// Runs before the page paints: the theme chosen on this browser, else the system's.
(function () {
  try {
    var chosen = localStorage.getItem("modelport-theme");
    if (chosen === "light" || chosen === "dark") {
      document.documentElement.setAttribute("data-theme", chosen);
    }
  } catch (e) {
    /* storage blocked: the system's theme applies */
  }
})();
