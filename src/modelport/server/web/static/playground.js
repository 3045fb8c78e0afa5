// The playground: each form calls the endpoint a client would (/v1/embeddings,
// /v1/chat/completions streamed, /api/v1/predict) with this browser's session, and shows
// what came back. Text from models and users is only ever set as text, never as HTML.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function post(url, body, signal) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
      signal: signal,
    });
  }

  // An error answer of /v1 or /api/v1 as one sentence (its message and hint).
  function failure(response) {
    return response.text().then(function (text) {
      var message = "HTTP " + response.status;
      try {
        var e = JSON.parse(text).error || {};
        message = [e.message, e.hint].filter(Boolean).join(" ") || message;
      } catch (ignored) {
        /* not JSON: the status says it */
      }
      throw new Error(message);
    });
  }

  function json(response) {
    return response.ok ? response.json() : failure(response);
  }

  function showError(target, error) {
    clear(target);
    target.appendChild(el("p", { class: "alert", role: "alert" }, error.message || String(error)));
  }

  function busy(form, on) {
    var button = form.querySelector("button[type=submit]");
    button.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function modelOf(form) {
    return form.querySelector("input[name=model]").value.trim();
  }

  // ------------------------------------------------------------------ embeddings

  function cosine(a, b) {
    var dot = 0, na = 0, nb = 0;
    for (var i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    return na && nb ? dot / Math.sqrt(na * nb) : 0;
  }

  function embeddings(form) {
    var target = document.getElementById("embeddings-result");
    var sentences = form.querySelector("textarea").value.split("\n").map(function (s) {
      return s.trim();
    }).filter(Boolean);
    var started = performance.now();
    busy(form, true);
    return post("/v1/embeddings", { model: modelOf(form), input: sentences })
      .then(json)
      .then(function (answer) {
        var ms = performance.now() - started;
        var vectors = answer.data.map(function (d) {
          return d.embedding;
        });
        clear(target);
        var table = el("table", { class: "similarity", id: "similarity" });
        table.appendChild(el("caption", {}, "Cosine similarity of each pair of sentences (1 is the same meaning)"));
        var head = el("tr");
        head.appendChild(el("td"));
        sentences.forEach(function (_, i) {
          head.appendChild(el("th", { scope: "col", class: "num" }, "#" + (i + 1)));
        });
        var thead = el("thead");
        thead.appendChild(head);
        table.appendChild(thead);
        var body = el("tbody");
        sentences.forEach(function (s, i) {
          var row = el("tr");
          row.appendChild(el("th", { scope: "row" }, "#" + (i + 1) + " " + s));
          vectors.forEach(function (_, j) {
            var score = cosine(vectors[i], vectors[j]);
            var cell = el("td", { class: "num", "data-score": score.toFixed(4) }, score.toFixed(3));
            // Stronger tint for more similar pairs; the number stays readable on it.
            cell.style.backgroundColor = "rgba(31, 95, 191, " + (Math.max(0, score) * 0.35).toFixed(3) + ")";
            row.appendChild(cell);
          });
          body.appendChild(row);
        });
        table.appendChild(body);
        var wrap = el("div", { class: "table-wrap" });
        wrap.appendChild(table);
        target.appendChild(wrap);
        target.appendChild(
          el(
            "p",
            { class: "muted", id: "embeddings-meta" },
            answer.model + ": " + vectors.length + " vectors of " + (vectors[0] || []).length +
              " dimensions, " + answer.usage.prompt_tokens + " tokens, " + ms.toFixed(0) + " ms"
          )
        );
      })
      .catch(function (e) {
        showError(target, e);
      })
      .finally(function () {
        busy(form, false);
      });
  }

  // ------------------------------------------------------------------ chat

  var conversation = [];
  var running = null;

  function bubble(role, text) {
    var item = el("li", { class: "msg " + role });
    item.appendChild(el("span", { class: "role" }, role === "user" ? "You" : "Model"));
    var body = el("div", { class: "content" }, text);
    item.appendChild(body);
    document.getElementById("chat-log").appendChild(item);
    return body;
  }

  // Reads an SSE body and calls back with each event's data until [DONE].
  function readEvents(response, onData) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (part) {
        if (part.done) return;
        buffer += decoder.decode(part.value, { stream: true });
        var events = buffer.split("\n\n");
        buffer = events.pop();
        for (var i = 0; i < events.length; i++) {
          var lines = events[i].split("\n");
          for (var j = 0; j < lines.length; j++) {
            if (lines[j].indexOf("data:") !== 0) continue;
            var data = lines[j].slice(5).trim();
            if (data === "[DONE]") return;
            onData(JSON.parse(data));
          }
        }
        return pump();
      });
    }
    return pump();
  }

  function chat(form) {
    var input = document.getElementById("chat-input");
    var status = document.getElementById("chat-result");
    var stop = document.getElementById("chat-stop");
    var text = input.value.trim();
    if (!text) return Promise.resolve();
    conversation.push({ role: "user", content: text });
    bubble("user", text);
    input.value = "";
    var answer = bubble("assistant", "");
    answer.parentNode.setAttribute("aria-busy", "true");
    var messages = conversation.slice();
    var system = document.getElementById("chat-system").value.trim();
    if (system) messages.unshift({ role: "system", content: system });
    var request = {
      model: modelOf(form),
      messages: messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    var maxTokens = parseInt(document.getElementById("chat-max-tokens").value, 10);
    if (maxTokens > 0) request.max_tokens = maxTokens;
    var temperature = document.getElementById("chat-temperature").value;
    if (temperature !== "") request.temperature = parseFloat(temperature);
    var started = performance.now();
    var first = null;
    var usage = null;
    var finish = null;
    var reply = "";
    running = new AbortController();
    busy(form, true);
    stop.disabled = false;
    status.textContent = "Answering…";
    return post("/v1/chat/completions", request, running.signal)
      .then(function (response) {
        if (!response.ok) return failure(response);
        return readEvents(response, function (chunk) {
          if (chunk.usage) usage = chunk.usage;
          (chunk.choices || []).forEach(function (choice) {
            var piece = choice.delta && choice.delta.content;
            if (piece) {
              if (first === null) first = performance.now() - started;
              reply += piece;
              answer.textContent = reply;
            }
            if (choice.finish_reason) finish = choice.finish_reason;
          });
        });
      })
      .then(function () {
        conversation.push({ role: "assistant", content: reply });
        var took = performance.now() - started;
        var parts = ["first token after " + (first === null ? "–" : first.toFixed(0) + " ms"), "done in " + took.toFixed(0) + " ms"];
        if (usage) parts.push(usage.prompt_tokens + " + " + usage.completion_tokens + " tokens");
        if (finish) parts.push("finished: " + finish);
        status.textContent = parts.join(" · ");
        answer.parentNode.setAttribute("data-done", "1");
      })
      .catch(function (e) {
        if (e.name === "AbortError") {
          conversation.push({ role: "assistant", content: reply });
          status.textContent = "Stopped.";
          answer.parentNode.setAttribute("data-done", "1");
          return;
        }
        conversation.pop();
        answer.parentNode.remove();
        showError(status, e);
      })
      .finally(function () {
        answer.parentNode.removeAttribute("aria-busy");
        running = null;
        stop.disabled = true;
        busy(form, false);
      });
  }

  // ------------------------------------------------------------------ tasks of /api/v1/predict

  function scoreTable(rows, caption) {
    var table = el("table", { class: "scores" });
    table.appendChild(el("caption", {}, caption));
    var head = el("tr");
    head.appendChild(el("th", { scope: "col" }, "Label"));
    head.appendChild(el("th", { scope: "col", class: "num" }, "Score"));
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      row.appendChild(el("th", { scope: "row" }, r.label));
      row.appendChild(el("td", { class: "num" }, Number(r.score).toFixed(4)));
      body.appendChild(row);
    });
    table.appendChild(body);
    return table;
  }

  function predict(form) {
    var section = form.id.replace(/-form$/, "");
    var target = document.getElementById(section + "-result");
    var model = modelOf(form);
    var body;
    if (section === "qa") {
      body = {
        inputs: {
          question: form.querySelector("[name=question]").value,
          context: form.querySelector("[name=context]").value,
        },
      };
    } else {
      body = { inputs: form.querySelector("[name=input]").value };
      // Every label's score, not only the likeliest one's.
      if (section === "classify") body.parameters = { top_k: 5 };
    }
    busy(form, true);
    var started = performance.now();
    return post("/api/v1/predict/" + model.split("/").map(encodeURIComponent).join("/"), body)
      .then(json)
      .then(function (answer) {
        var ms = performance.now() - started;
        var data = answer.data !== undefined ? answer.data : answer;
        clear(target);
        if (section === "qa" && data && data.answer !== undefined) {
          var p = el("p", { id: "qa-answer" });
          p.appendChild(el("strong", {}, data.answer));
          p.appendChild(document.createTextNode(" (score " + Number(data.score).toFixed(3) + ")"));
          target.appendChild(p);
        } else if (Array.isArray(data) && data.length && data[0].label !== undefined) {
          target.appendChild(scoreTable(data, "Labels, most likely first"));
        } else {
          target.appendChild(el("pre", { tabindex: "0" }, JSON.stringify(data, null, 2)));
        }
        target.appendChild(el("p", { class: "muted" }, model + " · " + ms.toFixed(0) + " ms"));
      })
      .catch(function (e) {
        showError(target, e);
      })
      .finally(function () {
        busy(form, false);
      });
  }

  var CALLS = { embeddings: embeddings, chat: chat, predict: predict };

  function setup() {
    document.querySelectorAll("form[data-call]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        CALLS[form.getAttribute("data-call")](form);
      });
    });
    var stop = document.getElementById("chat-stop");
    if (stop) {
      stop.addEventListener("click", function () {
        if (running) running.abort();
      });
    }
    var clearButton = document.getElementById("chat-clear");
    if (clearButton) {
      clearButton.addEventListener("click", function () {
        conversation = [];
        clear(document.getElementById("chat-log"));
        document.getElementById("chat-result").textContent = "";
      });
    }
    var chatInput = document.getElementById("chat-input");
    if (chatInput) {
      // Enter sends, Shift+Enter starts a new line, as in chat apps.
      chatInput.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey) {
          event.preventDefault();
          document.getElementById("chat-form").requestSubmit();
        }
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
