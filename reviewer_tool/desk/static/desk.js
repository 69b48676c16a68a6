// The desk's keyboard: one small module, no third-party code (loaded by base.html).
//
//   j / k        move a visible ring through the rows of a list ([data-row])
//   o / Enter    open the chosen row's link ([data-open] inside it)
//   /            go to the search box (#q); on a page without one, to the queue's
//   ?            show or hide the list of shortcuts (the <dialog id="help">)
//   other keys   act on the element marked data-key="<key>": a field is focused,
//                anything else (a button, a link, a <details>) is focused and clicked. When several
//                carry the same key, the one inside the focused row ([data-row]) or
//                [data-key-scope] wins, else the first on the page.
//
// No key does anything while the reviewer types in a field, nor with Ctrl, Alt or Meta
// held (those belong to the browser).

const TEXT_INPUTS = new Set([
  "", "text", "search", "date", "datetime-local", "month", "week", "time", "number",
  "email", "url", "tel", "password",
]);

/** Whether keys typed now go into a field rather than to the desk. */
function typing(element) {
  if (!element) return false;
  if (element.isContentEditable) return true;
  if (element.tagName === "TEXTAREA" || element.tagName === "SELECT") return true;
  return element.tagName === "INPUT" && TEXT_INPUTS.has(element.type);
}

function rows() {
  return [...document.querySelectorAll("[data-row]")];
}

function currentRow() {
  const active = document.activeElement;
  return (active && active.closest("[data-row]")) || document.querySelector("[data-row].is-current");
}

/** Put the ring on ``row`` and move focus there, so that a screen reader follows. */
function choose(row) {
  for (const other of document.querySelectorAll("[data-row].is-current")) {
    other.classList.remove("is-current");
  }
  row.classList.add("is-current");
  const link = row.querySelector("[data-open]");
  if (link) {
    link.focus({ preventScroll: true });
  } else {
    if (!row.hasAttribute("tabindex")) row.setAttribute("tabindex", "-1");
    row.focus({ preventScroll: true });
  }
  row.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function move(step) {
  const all = rows();
  if (all.length === 0) return false;
  const at = all.indexOf(currentRow());
  const next = at === -1 ? (step > 0 ? 0 : all.length - 1) : at + step;
  choose(all[Math.min(Math.max(next, 0), all.length - 1)]);
  return true;
}

function open() {
  const row = currentRow();
  const link = row && row.querySelector("[data-open]");
  if (!link) return false;
  link.click();
  return true;
}

function search() {
  const box = document.getElementById("q");
  if (box) {
    box.focus();
    box.select();
    return true;
  }
  const queue = document.body.dataset.queue;
  if (!queue) return false;
  window.location.assign(`${queue}#q`);
  return true;
}

function help() {
  const dialog = document.getElementById("help");
  if (!dialog) return false;
  if (dialog.open) dialog.close();
  else dialog.showModal();
  return true;
}

/** The element marked for ``key``: the focused row's or scope's own first. */
function marked(key) {
  const selector = `[data-key="${CSS.escape(key)}"]`;
  const active = document.activeElement;
  const scope = active && active.closest("[data-key-scope], [data-row]");
  return (scope && scope.querySelector(selector)) || document.querySelector(selector);
}

function act(key) {
  let element = marked(key);
  if (!element || element.disabled) return false;
  if (element.tagName === "DETAILS") element = element.querySelector("summary") || element;
  element.focus();
  // a field waits for the reviewer's words; anything else (a button, a link, a
  // checkbox, a summary) does what a click on it does
  if (!typing(element)) element.click();
  return true;
}

function onKey(event) {
  if (event.ctrlKey || event.altKey || event.metaKey || event.isComposing) return;
  if (event.defaultPrevented || typing(event.target)) return;
  const dialog = document.getElementById("help");
  if (dialog && dialog.open && event.key !== "?") return; // Escape closes it natively
  let done = false;
  switch (event.key) {
    case "?": done = help(); break;
    case "/": done = search(); break;
    case "j": done = move(1); break;
    case "k": done = move(-1); break;
    case "o": done = open(); break;
    case "Enter":
      // a focused link or button opens itself; only a chosen row needs help
      done = document.activeElement && document.activeElement.matches("[data-row]") && open();
      break;
    default:
      if (event.key.length === 1 && !event.shiftKey) done = act(event.key);
  }
  if (done) event.preventDefault();
}

function start() {
  document.addEventListener("keydown", onKey);
  const dialog = document.getElementById("help");
  for (const button of document.querySelectorAll("[data-help-open]")) {
    button.hidden = false;
    button.addEventListener("click", () => dialog && dialog.showModal());
  }
  for (const button of document.querySelectorAll("[data-help-close]")) {
    button.addEventListener("click", () => dialog && dialog.close());
  }
  if (window.location.hash === "#q") {
    const box = document.getElementById("q");
    if (box) box.focus();
  }
}

start();
