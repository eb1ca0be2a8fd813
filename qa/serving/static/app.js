// The chat page: streams answers from /v1/chat/completions (OpenAI protocol, stream: true),
// renders [n] markers as buttons that open the quoted passage. Plain JS modules, no
// dependencies, no build step.
import { authHeaders, el, errorMessage, storeKey, storedKey, today } from "./dom.js";
import { closeSource, openSource, setUpSourcePanel } from "./panel.js";
import { groupByNumber, renderMarkedText, renderShortAnswer, renderSources } from "./render.js";

const SOURCES_MARK = "\n\nSources:\n";
// Earlier turns sent with each question: enough for follow-ups, bounded so that a long chat
// stays under the server's body cap.
const HISTORY_MESSAGES = 8;
const HISTORY_CHARS = 24000;
const $ = (id) => document.getElementById(id);

const els = {
  log: $("log"),
  form: $("ask-form"),
  question: $("question"),
  asOf: $("as-of"),
  send: $("send"),
  stop: $("stop"),
  error: $("error"),
  newChat: $("new-chat"),
  keyBox: $("key-box"),
  keyForm: $("key-form"),
  keyInput: $("api-key"),
  keyStatus: $("key-status"),
};

const state = {
  history: [], // the conversation so far: {role, content}
  controller: null, // AbortController of the request in flight
};

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

function askForKey(message) {
  els.keyBox.open = true;
  els.keyStatus.textContent = message;
  els.keyInput.focus();
}

function setBusy(busy) {
  els.send.disabled = busy;
  els.stop.hidden = !busy;
  els.question.setAttribute("aria-disabled", busy ? "true" : "false");
}

// The newest answer stays in view as it streams: the page is scrolled to its end, where the
// sticky question box sits below the log instead of over the answer (scrolling the answer's
// own end into view put it under the box). Instant, not smooth: a smooth scroll restarted on
// every streamed word lags behind the text.
function scrollToEnd() {
  window.scrollTo({ top: document.documentElement.scrollHeight, behavior: "instant" });
}

// Whether the reader is at the end of the page (following the answer) rather than scrolled
// up to read something else, which a streamed word must not take away from them.
function atEnd() {
  const root = document.documentElement;
  return window.innerHeight + window.scrollY >= root.scrollHeight - 48;
}

// Runs `change` (which adds text to the newest answer) and keeps following the answer if
// the reader was.
function following(change) {
  const follow = atEnd();
  change();
  if (follow) scrollToEnd();
}

// The last turns of the conversation, ending with the new question, within the bounds.
function boundedHistory(messages) {
  let kept = messages.slice(-(HISTORY_MESSAGES + 1));
  while (kept.length > 1 && JSON.stringify(kept).length > HISTORY_CHARS) kept = kept.slice(1);
  return kept;
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
    short: el("p", "short-answer"),
    answer: el("div", "answer"),
    cannot: el("p", "cannot-answer"),
    sourcesHead: el("h3", "sources-head", "Sources"),
    sources: el("ol", "sources"),
    failure: el("p", "turn-error"),
    stopped: el("p", "stopped-note", "Stopped."),
  };
  turn.stopped.hidden = true;
  turn.rewritten.hidden = true;
  turn.short.hidden = true;
  turn.asOf = el("p", "as-of-note");
  turn.asOf.hidden = true;
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
    turn.short,
    turn.answer,
    turn.cannot,
    turn.sourcesHead,
    turn.sources,
    turn.asOf,
    turn.stopped,
    turn.failure,
  );
  els.log.append(item);
  return turn;
}

// Stopped by the reader: not an error. What was written so far stays, greyed, with a note.
function stopTurn(turn) {
  turn.item.removeAttribute("aria-busy");
  turn.item.classList.add("stopped");
  turn.status.hidden = true;
  turn.failure.hidden = true;
  turn.stopped.hidden = false;
}

function failTurn(turn, message) {
  turn.item.removeAttribute("aria-busy");
  turn.item.classList.add("failed");
  turn.status.hidden = true;
  turn.failure.textContent = "Error: " + message;
  turn.failure.hidden = false;
  showError(message);
}

async function ask(question) {
  showError("");
  addUserTurn(question);
  const turn = addAssistantTurn();
  scrollToEnd();
  const messages = boundedHistory(state.history.concat([{ role: "user", content: question }]));
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  try {
    const result = await streamAnswer(messages, turn, controller.signal);
    if (result) {
      state.history = messages.concat([{ role: "assistant", content: result }]);
    }
  } catch (err) {
    if (err && err.name === "AbortError") following(() => stopTurn(turn));
    else following(() => failTurn(turn, (err && err.message) || String(err)));
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

// Streams one answer into `turn`; returns the answer text to keep in the conversation.
async function streamAnswer(messages, turn, signal) {
  let response;
  try {
    response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({
        model: "qa",
        stream: true,
        // The page draws the short answer and the sources from the fields; the text stays bare.
        message_format: "plain",
        messages,
        as_of: els.asOf.value || undefined,
      }),
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
    following(() => show(chunk));
  };

  const show = (chunk) => {
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
      renderMarkedText(turn.answer, content, new Map(), openSource);
    }
    if (choice.finish_reason) {
      final = {
        citations: delta.citations || chunk.citations || [],
        answered: delta.answered !== false,
        rewritten: delta.rewritten_question || null,
        shortAnswer: delta.short_answer || "",
        shortCitation: delta.short_answer_citation || null,
        confidence: typeof delta.confidence === "number" ? delta.confidence : null,
        asOf: (delta.filters && delta.filters.as_of) || null,
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
  const text = withoutSourcesList(content, final.citations);
  following(() => finish(turn, text, final));
  return text;
}

// The text ends with a plain sources list for clients that ignore `citations`; this page
// shows its own, clickable one instead.
function withoutSourcesList(content, citations) {
  const cut = content.lastIndexOf(SOURCES_MARK);
  return citations.length && cut >= 0 ? content.slice(0, cut) : content;
}

// The checked answer in place of the draft: its short answer, markers, sources and notes.
function finish(turn, text, final) {
  const byN = groupByNumber(final.citations);
  turn.draft.remove();
  turn.status.hidden = true;
  renderShortAnswer(turn.short, final.shortAnswer, final.shortCitation, byN, openSource, final.confidence);
  renderMarkedText(turn.answer, text, byN, openSource);
  renderSources(turn.sources, byN, openSource);
  if (final.asOf) {
    turn.asOf.textContent = "As of " + final.asOf;
    turn.asOf.hidden = false;
  }
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

els.asOf.value = today();
els.keyInput.value = storedKey();
els.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  els.keyStatus.textContent = storeKey(els.keyInput.value.trim());
});

setUpSourcePanel(askForKey);

els.question.focus();
