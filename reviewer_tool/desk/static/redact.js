// The redaction page's selection tool: one small module, no third-party code (redact.html).
//
// Each text field is drawn as runs, each <span data-at="N" data-len="L"> holding L code
// points of the field's text from offset N (as the server counts them), a hidden character's
// marker <span data-at="N" data-hidden> standing for one character, and detected
// identifiers as <mark data-start data-end> around their own runs, followed by a number
// <sup data-pos>. Words read aloud inside a mark ("[IMO ship number: ") belong to no run.
// A selection is turned into the field's offsets from those, and sent as a checked
// checkbox name="manual" value="FIELD:START:END"; the server checks them again.
//
// Without this module the page still works: the reviewer types the words to remove.
// Ticking or unticking a finding greys its mark out; clicking a mark toggles its box.

/** How many code points ``text`` holds (a JavaScript string counts UTF-16 units). */
function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** The field offset where ``element`` (a run, a mark, a number) begins or ends. */
function edge(element, atEnd) {
  const run = element.closest("[data-at]");
  if (run) {
    const at = Number(run.dataset.at);
    if (!atEnd) return at;
    return run.dataset.hidden ? at + 1 : at + Number(run.dataset.len);
  }
  const pos = element.closest("[data-pos]");
  if (pos) return Number(pos.dataset.pos);
  const mark = element.closest("mark[data-start]");
  if (mark) return Number(atEnd ? mark.dataset.end : mark.dataset.start);
  return null;
}

/** The first (or last) offset found in ``element`` or below it. */
function inside(element, atEnd) {
  const all = [element, ...element.querySelectorAll("[data-at], [data-pos], mark[data-start]")];
  const found = all.map((el) => edge(el, atEnd)).filter((value) => value !== null);
  if (found.length === 0) return null;
  return atEnd ? Math.max(...found) : Math.min(...found);
}

/** The field offset of a selection boundary (``node``, ``offset``) inside ``box``. */
function offsetOf(box, node, offset, atEnd) {
  if (node.nodeType === Node.TEXT_NODE) {
    const parent = node.parentElement;
    const run = parent && parent.closest("[data-at]");
    if (run && !run.dataset.hidden && run.firstChild === node) {
      // the run's own length at its end: a browser has read its CR LF as one LF
      if (offset >= node.data.length) return Number(run.dataset.at) + Number(run.dataset.len);
      return Number(run.dataset.at) + codePoints(node.data.slice(0, offset));
    }
    if (run && run.dataset.hidden) return Number(run.dataset.at) + (offset > 0 ? 1 : 0);
    return parent ? edge(parent, atEnd) : null;
  }
  const children = node.childNodes;
  if (offset < children.length) {
    const child = children[offset];
    if (child.nodeType === Node.ELEMENT_NODE) return inside(child, false);
    return offsetOf(box, child, 0, false);
  }
  if (node === box) return Number(box.dataset.length);
  return node.nodeType === Node.ELEMENT_NODE ? inside(node, true) : null;
}

function say(field, message) {
  const slot = document.querySelector(`[data-select-error="${CSS.escape(field)}"]`);
  if (slot) slot.textContent = message;
}

let added = 0;

/** Add the current selection in ``field``'s text as one of the reviewer's redactions. */
function addSelection(field) {
  const box = document.getElementById(`text-${field}`);
  const selection = window.getSelection();
  say(field, "");
  if (!box || !selection || selection.rangeCount === 0 || selection.isCollapsed) {
    say(field, "Select some words in this field's text first.");
    return;
  }
  const range = selection.getRangeAt(0);
  if (!box.contains(range.startContainer) || !box.contains(range.endContainer)) {
    say(field, "The selection must lie inside this field's text.");
    return;
  }
  const start = offsetOf(box, range.startContainer, range.startOffset, false);
  const end = offsetOf(box, range.endContainer, range.endOffset, true);
  const length = Number(box.dataset.length);
  if (start === null || end === null || !(start < end) || end > length) {
    say(field, "That selection could not be read; select it again.");
    return;
  }
  const list = document.querySelector(`[data-manual-list="${CSS.escape(field)}"]`);
  added += 1;
  const id = `manual-${field}-new-${added}`;
  const row = document.createElement("div");
  row.className = "choice";
  const checkbox = document.createElement("input");
  checkbox.type = "checkbox";
  checkbox.id = id;
  checkbox.name = "manual";
  checkbox.value = `${field}:${start}:${end}`;
  checkbox.checked = true;
  const label = document.createElement("label");
  label.htmlFor = id;
  const quote = document.createElement("q");
  quote.dir = "auto";
  quote.textContent = range.toString(); // text only: never parsed as markup
  label.append("Remove the selection ", quote);
  row.append(checkbox, label);
  list.append(row);
  selection.removeAllRanges();
  checkbox.focus();
}

function follow(checkbox) {
  const mark = document.getElementById(checkbox.dataset.mark);
  if (mark) mark.classList.toggle("is-kept", !checkbox.checked);
}

function start() {
  for (const tool of document.querySelectorAll("[data-select-tool]")) tool.hidden = false;
  for (const button of document.querySelectorAll("[data-select-for]")) {
    // keep the selection: a mouse press on the button would otherwise clear it first
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => addSelection(button.dataset.selectFor));
  }
  for (const checkbox of document.querySelectorAll("input[data-mark]")) {
    follow(checkbox);
    checkbox.addEventListener("change", () => follow(checkbox));
  }
  for (const mark of document.querySelectorAll("mark[data-check]")) {
    mark.addEventListener("click", () => {
      const selection = window.getSelection();
      if (selection && !selection.isCollapsed) return; // the reviewer is selecting text
      const checkbox = document.getElementById(mark.dataset.check);
      if (!checkbox) return;
      checkbox.checked = !checkbox.checked;
      follow(checkbox);
    });
  }
}

start();
