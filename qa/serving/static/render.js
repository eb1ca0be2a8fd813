// Rendering a checked answer: [n] markers as buttons, the short answer, the sources list.
import { dateLabel, el } from "./dom.js";

// The server's own citation-marker pattern (qa.answering.check.MARKER), so "[1]" and "[1, 2]" are
// found exactly as the citation checker finds them.
const MARKER_PATTERN = document.documentElement.dataset.markerPattern;

export function groupByNumber(citations) {
  const byN = new Map();
  for (const c of citations || []) {
    if (!byN.has(c.n)) byN.set(c.n, []);
    byN.get(c.n).push(c);
  }
  return byN;
}

// A [n] marker: a button that opens the source (openSource(n, cites, button)) when its
// citation is known, else the plain marker.
function citeButton(n, byN, openSource) {
  const cites = byN.get(n);
  if (!cites) return el("span", "marker", "[" + n + "]");
  const button = el("button", "cite", "[" + n + "]");
  button.type = "button";
  button.setAttribute("aria-label", "Source " + n + ": " + cites[0].title);
  button.title = cites[0].title + " (" + dateLabel(cites[0].published) + ")";
  button.addEventListener("click", () => openSource(n, cites, button));
  return button;
}

// Text with each marker ("[2]", "[1, 3]") as one button per passage number.
export function renderMarkedText(container, text, byN, openSource) {
  container.replaceChildren();
  const marker = new RegExp(MARKER_PATTERN, "g");
  let last = 0;
  let match;
  while ((match = marker.exec(text)) !== null) {
    if (match.index > last) container.append(text.slice(last, match.index));
    for (const n of match[1].split(",")) {
      container.append(citeButton(Number(n.trim()), byN, openSource));
    }
    last = marker.lastIndex;
  }
  if (last < text.length) container.append(text.slice(last));
}

// The short answer (a name, number or date) with the passage that states it, and the learned
// probability that it is right (shown only when it cleared the server's bar).
export function renderShortAnswer(node, shortAnswer, citation, byN, openSource, confidence) {
  node.hidden = !shortAnswer;
  if (!shortAnswer) return;
  node.replaceChildren(el("span", "short-label", "Answer: "), shortAnswer);
  if (citation) node.append(" ", citeButton(citation, byN, openSource));
  if (confidence !== null && confidence !== undefined) {
    node.append(" ", el("span", "short-confidence", "confidence " + confidence.toFixed(2)));
  }
}

export function renderSources(list, byN, openSource) {
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
