// The store page: a pull's progress from the server's Server-Sent Events, and its Cancel.
(function () {
  "use strict";

  var STATES = { running: "pulling…", done: "done", failed: "failed", cancelled: "cancelled" };

  function size(bytes) {
    var units = ["B", "KB", "MB", "GB", "TB"];
    var n = bytes;
    for (var i = 0; i < units.length; i++) {
      if (n < 1000 || i === units.length - 1) return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
      n /= 1000;
    }
    return n + " B";
  }

  function token() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.getAttribute("content") : "";
  }

  function refreshStore() {
    // The table and the disk use, as the server now sees them.
    if (window.htmx && document.getElementById("stored")) {
      window.htmx.ajax("GET", "/ui/store", { target: "#stored", swap: "outerHTML" });
    }
  }

  function follow(job) {
    if (job.getAttribute("data-following")) return;
    if (job.getAttribute("data-pull-state") !== "running") return;
    job.setAttribute("data-following", "1");
    var bar = job.querySelector("progress");
    var state = job.querySelector("#pull-state");
    var text = job.querySelector("#pull-text");
    var cancelForm = job.querySelector("#pull-cancel-form");
    var source = new EventSource(job.getAttribute("data-pull-events"));
    var shownState = "running";

    function setState(name) {
      job.setAttribute("data-pull-state", name);
      if (name !== shownState) {
        shownState = name;
        state.textContent = STATES[name] || name;
      }
    }

    function end(name, message) {
      source.close();
      setState(name);
      if (cancelForm) cancelForm.remove();
      if (name === "done") bar.value = bar.max;
      text.textContent = message;
    }

    source.addEventListener("progress", function (e) {
      var p = JSON.parse(e.data);
      if (p.total) {
        bar.max = p.total;
        bar.value = Math.min(p.completed, p.total);
      }
      var line = size(p.completed) + (p.total ? " of " + size(p.total) : "");
      line += " in " + p.files + (p.files === 1 ? " file" : " files");
      if (p.percent !== undefined) line += " (" + p.percent.toFixed(0) + "%)";
      if (p.file && p.status === "downloading") line += " · " + p.file;
      else if (p.status && p.status !== "downloading") line += " · " + p.status;
      text.textContent = line;
    });
    source.addEventListener("done", function (e) {
      var r = JSON.parse(e.data).result || {};
      var how = r.from_store ? "already in the store" : size(r.downloaded || 0) + " downloaded";
      end("done", "Pulled " + r.ref + " at " + String(r.revision || "").slice(0, 12) + ": " + size(r.size || 0) + ", " + how + ".");
      refreshStore();
    });
    source.addEventListener("failed", function (e) {
      end("failed", JSON.parse(e.data).message || "The pull failed.");
    });
    source.addEventListener("cancelled", function (e) {
      end("cancelled", JSON.parse(e.data).message || "Cancelled.");
      refreshStore();
    });
    source.onerror = function () {
      // The stream broke: the browser reconnects by itself; a pull that ended is said by
      // the events above, so nothing to do unless the page was left.
    };
    if (cancelForm) {
      cancelForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = cancelForm.querySelector("button");
        button.disabled = true;
        button.textContent = "Cancelling…";
        fetch(cancelForm.action, {
          method: "POST",
          headers: { "X-CSRF-Token": token(), Accept: "application/json" },
          credentials: "same-origin",
        }).catch(function () {
          button.disabled = false;
          button.textContent = "Cancel the pull";
        });
      });
    }
    // Leaving the page closes the stream, which stops the pull on the server.
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  function scan() {
    var job = document.getElementById("pull-job");
    if (job) follow(job);
  }

  document.addEventListener("htmx:afterSwap", scan);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scan);
  } else {
    scan();
  }
})();
