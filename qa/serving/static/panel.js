// The source panel: the quoted passage of a citation, and the article around it.
import { authHeaders, dateLabel, el, errorMessage } from "./dom.js";

const CONTEXT_CHARS = 700;
const $ = (id) => document.getElementById(id);

const els = {
  panel: $("source-panel"),
  panelTitle: $("source-title"),
  panelMeta: $("source-meta"),
  panelQuote: $("source-quote"),
  panelClose: $("close-panel"),
  showContext: $("show-context"),
  context: $("source-context"),
};

const state = { panelCitations: [], panelTrigger: null, onAuthNeeded: () => {} };

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
    const response = await fetch("/api/articles/" + path, { headers: authHeaders() });
    if (!response.ok) {
      if (response.status === 401) state.onAuthNeeded("This server needs an API key.");
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
// The server's offsets count code points (Python strings), while JS strings index UTF-16
// units: an emoji before the quote would shift the mark. So the text is split into code
// points (Array.from) and every offset is used in that space.
function contextParagraphs(article, start, end) {
  const chars = Array.from(article.text || "");
  const cut = (a, b) => chars.slice(a, b).join("");
  const segments = article.segments && article.segments.length ? article.segments : [[0, chars.length]];
  const from = Math.max(0, start - CONTEXT_CHARS);
  const to = Math.min(chars.length, end + CONTEXT_CHARS);
  const body = el("div", "context-text");
  for (const [s0, e0] of segments) {
    const a = Math.max(s0, from);
    const b = Math.min(e0, to);
    if (a >= b) continue;
    const para = el("p");
    if (a > s0) para.append("… ");
    const markFrom = Math.min(Math.max(start, a), b);
    const markTo = Math.max(Math.min(end, b), markFrom);
    para.append(cut(a, markFrom));
    if (markTo > markFrom) para.append(el("mark", "", cut(markFrom, markTo)));
    para.append(cut(markTo, b));
    if (b < e0) para.append(" …");
    body.append(para);
  }
  return body;
}

// Wire the panel; ``onAuthNeeded(message)`` is called when the server asks for the API key.
export function setUpSourcePanel(onAuthNeeded) {
  state.onAuthNeeded = onAuthNeeded;
  els.panelClose.addEventListener("click", closeSource);
  els.showContext.addEventListener("click", showContext);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !els.panel.hidden) closeSource();
  });
}

export { closeSource, openSource };
