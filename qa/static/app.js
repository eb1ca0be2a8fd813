// The chat page: streams answers from /v1/chat/completions (OpenAI protocol, stream: true),
// renders [n] markers as buttons that open the quoted passage. Plain JS, no dependencies.
"use strict";

(() => {
  const KEY_STORAGE = "qa.apiKey";
  const SOURCES_MARK = "\n\nSources:\n";
  const CONTEXT_CHARS = 700;
  const $ = (id) => document.getElementById(id);

  const els = {
    log: $("log"),
    form: $("ask-form"),
    question: $("question"),
    send: $("send"),
    stop: $("stop"),
    error: $("error"),
    newChat: $("new-chat"),
    keyBox: $("key-box"),
    keyForm: $("key-form"),
    keyInput: $("api-key"),
    keyStatus: $("key-status"),
    panel: $("source-panel"),
    panelTitle: $("source-title"),
    panelMeta: $("source-meta"),
    panelQuote: $("source-quote"),
    panelClose: $("close-panel"),
    showContext: $("show-context"),
    context: $("source-context"),
  };

  const state = {
    history: [], // the conversation sent with every question: {role, content}
    controller: null, // AbortController of the request in flight
    panelCitations: [],
    panelTrigger: null,
  };

  // ------------------------------------------------------------------ helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function storedKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return "";
    }
  }

  function requestHeaders() {
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    const key = storedKey();
    if (key) headers.Authorization = "Bearer " + key;
    return headers;
  }

  function showError(message) {
    els.error.textContent = message;
    els.error.hidden = !message;
  }

  function askForKey(message) {
    els.keyBox.open = true;
    els.keyStatus.textContent = message;
    els.keyInput.focus();
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) {
      /* not JSON */
    }
    return "the server answered " + response.status + " " + response.statusText;
  }

  function setBusy(busy) {
    els.send.disabled = busy;
    els.stop.hidden = !busy;
    els.question.setAttribute("aria-disabled", busy ? "true" : "false");
  }

  function scrollToEnd() {
    els.log.lastElementChild?.scrollIntoView({ block: "end", behavior: "smooth" });
  }

  function dateLabel(published) {
    return published || "undated";
  }

  // ------------------------------------------------------------------ rendering answers

  function groupByNumber(citations) {
    const byN = new Map();
    for (const c of citations || []) {
      if (!byN.has(c.n)) byN.set(c.n, []);
      byN.get(c.n).push(c);
    }
    return byN;
  }

  // Text with each [n] marker as a button (when its citation is known) or a plain marker.
  function renderMarkedText(container, text, byN) {
    container.replaceChildren();
    const marker = /\[(\d+)\]/g;
    let last = 0;
    let match;
    while ((match = marker.exec(text)) !== null) {
      if (match.index > last) container.append(text.slice(last, match.index));
      const n = Number(match[1]);
      const cites = byN.get(n);
      if (cites) {
        const button = el("button", "cite", "[" + n + "]");
        button.type = "button";
        button.setAttribute("aria-label", "Source " + n + ": " + cites[0].title);
        button.title = cites[0].title + " (" + dateLabel(cites[0].published) + ")";
        button.addEventListener("click", () => openSource(n, cites, button));
        container.append(button);
      } else {
        container.append(el("span", "marker", match[0]));
      }
      last = marker.lastIndex;
    }
    if (last < text.length) container.append(text.slice(last));
  }

  function renderSources(list, byN) {
    list.replaceChildren();
    for (const [n, cites] of [...byN.entries()].sort((a, b) => a[0] - b[0])) {
      const item = el("li");
      const button = el("button", "source-link");
      button.type = "button";
      button.append(el("span", "source-n", "[" + n + "]"), " " + cites[0].title + " ");
      button.append(el("span", "source-date", "(" + dateLabel(cites[0].published) + ")"));
      button.addEventListener("click", () => openSource(n, cites, button));
      item.append(button);
      list.append(item);
    }
    list.hidden = byN.size === 0;
  }

  function addUserTurn(question) {
    document.getElementById("empty-hint")?.remove();
    const item = el("li", "turn user");
    item.append(el("span", "visually-hidden", "You asked: "), el("div", "bubble", question));
    els.log.append(item);
  }

  function addAssistantTurn() {
    const item = el("li", "turn assistant");
    item.setAttribute("aria-busy", "true");
    const turn = {
      item,
      rewritten: el("p", "rewritten"),
      status: el("p", "status", "Searching the articles…"),
      draft: el("div", "draft"),
      answer: el("div", "answer"),
      cannot: el("p", "cannot-answer"),
      sourcesHead: el("h3", "sources-head", "Sources"),
      sources: el("ol", "sources"),
      failure: el("p", "turn-error"),
    };
    turn.rewritten.hidden = true;
    turn.cannot.hidden = true;
    turn.sourcesHead.hidden = true;
    turn.sources.hidden = true;
    turn.failure.hidden = true;
    turn.draft.setAttribute("aria-hidden", "true"); // read the checked answer, not the draft
    item.append(
      el("span", "visually-hidden", "Answer: "),
      turn.rewritten,
      turn.status,
      turn.draft,
      turn.answer,
      turn.cannot,
      turn.sourcesHead,
      turn.sources,
      turn.failure,
    );
    els.log.append(item);
    return turn;
  }

  function failTurn(turn, message) {
    turn.item.removeAttribute("aria-busy");
    turn.item.classList.add("failed");
    turn.status.hidden = true;
    turn.failure.textContent = "Error: " + message;
    turn.failure.hidden = false;
    showError(message);
  }

  // ------------------------------------------------------------------ asking

  async function ask(question) {
    showError("");
    addUserTurn(question);
    const turn = addAssistantTurn();
    scrollToEnd();
    const messages = state.history.concat([{ role: "user", content: question }]);
    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    try {
      const result = await streamAnswer(messages, turn, controller.signal);
      if (result) {
        state.history = messages.concat([{ role: "assistant", content: result }]);
      }
    } catch (err) {
      if (err && err.name === "AbortError") failTurn(turn, "stopped before the answer was complete");
      else failTurn(turn, (err && err.message) || String(err));
    } finally {
      state.controller = null;
      setBusy(false);
      scrollToEnd();
    }
  }

  // Streams one answer into `turn`; returns the answer text to keep in the conversation.
  async function streamAnswer(messages, turn, signal) {
    let response;
    try {
      response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: requestHeaders(),
        body: JSON.stringify({ model: "qa", stream: true, messages }),
        signal,
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new Error("could not reach the server (" + ((err && err.message) || err) + ")");
    }
    if (!response.ok) {
      const message = await errorMessage(response);
      if (response.status === 401) {
        askForKey("This server needs an API key: enter it above, then ask again.");
      }
      throw new Error(message);
    }
    if (!response.body) throw new Error("this browser cannot read a streamed response");

    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let draft = "";
    let content = "";
    let final = null;
    let done = false;

    const handle = (event) => {
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) return;
      if (data === "[DONE]") {
        done = true;
        return;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || "the server failed");
      const choice = (chunk.choices || [])[0];
      if (!choice) return;
      const delta = choice.delta || {};
      if (typeof delta.draft === "string" && delta.draft) {
        // The model's raw text as it is written; replaced by the checked answer below.
        draft += delta.draft;
        if (!content) {
          turn.status.textContent = "Writing… (citations are checked at the end)";
          turn.draft.textContent = draft;
        }
      }
      if (typeof delta.content === "string" && delta.content) {
        content += delta.content;
        turn.draft.hidden = true;
        turn.status.textContent = "Checked answer:";
        turn.status.hidden = true;
        renderMarkedText(turn.answer, content, new Map());
      }
      if (choice.finish_reason) {
        final = {
          citations: delta.citations || chunk.citations || [],
          answered: delta.answered !== false,
          rewritten: delta.rewritten_question || null,
        };
      }
    };

    while (!done) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        handle(event);
        if (done) break;
      }
    }
    if (!final) throw new Error("the answer was cut off (the connection ended early)");

    // The text ends with a plain sources list for clients that ignore `citations`;
    // this page shows its own, clickable one instead.
    let text = content;
    const cut = content.lastIndexOf(SOURCES_MARK);
    if (final.citations.length && cut >= 0) text = content.slice(0, cut);
    const byN = groupByNumber(final.citations);
    turn.draft.remove();
    turn.status.hidden = true;
    renderMarkedText(turn.answer, text, byN);
    renderSources(turn.sources, byN);
    turn.sourcesHead.hidden = byN.size === 0;
    if (final.rewritten) {
      turn.rewritten.textContent = "Searched for: " + final.rewritten;
      turn.rewritten.hidden = false;
    }
    if (!final.answered) {
      turn.item.classList.add("unanswered");
      turn.cannot.textContent =
        "The articles do not answer this. Try rephrasing, or ask about something they cover.";
      turn.cannot.hidden = false;
    }
    turn.item.removeAttribute("aria-busy");
    return text;
  }

  // ------------------------------------------------------------------ the source panel

  function openSource(n, cites, trigger) {
    const first = cites[0];
    state.panelCitations = cites;
    state.panelTrigger = trigger;
    els.panelTitle.textContent = "[" + n + "] " + first.title;
    els.panelMeta.textContent = dateLabel(first.published) + " · article " + first.doc_id;
    els.panelQuote.replaceChildren(...cites.map((c) => el("p", "quote-text", c.quote)));
    els.context.hidden = true;
    els.context.replaceChildren();
    els.showContext.hidden = false;
    els.showContext.disabled = false;
    els.panel.hidden = false;
    document.body.classList.add("panel-open");
    els.panel.focus();
  }

  function closeSource() {
    els.panel.hidden = true;
    document.body.classList.remove("panel-open");
    if (state.panelTrigger && document.contains(state.panelTrigger)) state.panelTrigger.focus();
    state.panelTrigger = null;
  }

  async function showContext() {
    const cite = state.panelCitations[0];
    if (!cite) return;
    els.showContext.disabled = true;
    const path = cite.doc_id.split("/").map(encodeURIComponent).join("/");
    let article;
    try {
      const headers = {};
      const key = storedKey();
      if (key) headers.Authorization = "Bearer " + key;
      const response = await fetch("/api/articles/" + path, { headers });
      if (!response.ok) {
        if (response.status === 401) askForKey("This server needs an API key.");
        throw new Error(await errorMessage(response));
      }
      article = await response.json();
    } catch (err) {
      els.context.replaceChildren(el("p", "turn-error", "Could not load the article: " + err.message));
      els.context.hidden = false;
      els.showContext.disabled = false;
      return;
    }
    const body = contextParagraphs(article, cite.start, cite.end);
    const head = el("p", "meta");
    head.append(article.source ? article.source + " · " : "", dateLabel(article.published));
    if (article.url && /^https?:\/\//.test(article.url)) {
      const link = el("a", "", "original article");
      link.href = article.url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      head.append(" · ", link);
    }
    els.context.replaceChildren(head, body);
    els.context.hidden = false;
    els.showContext.hidden = true;
    els.context.querySelector("mark")?.scrollIntoView({ block: "center" });
  }

  // The kept paragraphs (segments) of the article around [start, end), the quote marked.
  function contextParagraphs(article, start, end) {
    const text = article.text || "";
    const segments = article.segments && article.segments.length ? article.segments : [[0, text.length]];
    const from = Math.max(0, start - CONTEXT_CHARS);
    const to = Math.min(text.length, end + CONTEXT_CHARS);
    const body = el("div", "context-text");
    for (const [s0, e0] of segments) {
      const a = Math.max(s0, from);
      const b = Math.min(e0, to);
      if (a >= b) continue;
      const para = el("p");
      if (a > s0) para.append("… ");
      const markFrom = Math.min(Math.max(start, a), b);
      const markTo = Math.max(Math.min(end, b), markFrom);
      para.append(text.slice(a, markFrom));
      if (markTo > markFrom) para.append(el("mark", "", text.slice(markFrom, markTo)));
      para.append(text.slice(markTo, b));
      if (b < e0) para.append(" …");
      body.append(para);
    }
    return body;
  }

  // ------------------------------------------------------------------ wiring

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.controller) return;
    const question = els.question.value.trim();
    if (!question) {
      showError("Type a question first.");
      els.question.focus();
      return;
    }
    els.question.value = "";
    ask(question);
  });

  els.question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });

  els.stop.addEventListener("click", () => state.controller?.abort());

  els.newChat.addEventListener("click", () => {
    state.controller?.abort();
    state.history = [];
    els.log.replaceChildren();
    closeSource();
    showError("");
    els.question.focus();
  });

  els.log.addEventListener("click", (event) => {
    const example = event.target.closest("button.example");
    if (example) {
      els.question.value = example.textContent;
      els.form.requestSubmit();
    }
  });

  els.keyInput.value = storedKey();
  els.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      const key = els.keyInput.value.trim();
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
      els.keyStatus.textContent = key ? "Saved." : "Removed.";
    } catch (_) {
      els.keyStatus.textContent = "This browser does not allow storing the key.";
    }
  });

  els.panelClose.addEventListener("click", closeSource);
  els.showContext.addEventListener("click", showContext);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !els.panel.hidden) closeSource();
  });

  els.question.focus();
})();
