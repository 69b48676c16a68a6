// The report form in the page: its two steps in one, the questions for the
// chosen category, what it holds, and the problems marked beside the fields.
//
// The server draws the form (portal/web/templates/report.html). Step 1 is the
// category alone, with step 2 waiting in <template id="details">; here it is
// put in place, so the reporter never leaves the page. Only the hidden
// attribute hides anything, and a field that holds a value is never hidden:
// when it does not belong to the chosen category it stays in sight, marked,
// and is sent like any other. Nothing here ever clears a value.

import { _ } from './i18n.js';

const KEYS = new Set(['csrf_token', 'once', 'attachments']);

/** Put step 2 in place if the page is at step 1; the form then posts as step 2 does. */
export function showDetails(form) {
  const template = form.querySelector('template#details');
  if (form.dataset.step !== 'category' || template === null) return;
  const next = form.querySelector('#next-step');
  template.replaceWith(template.content.cloneNode(true));
  if (next) {
    next.replaceChildren(_("Choose one: the questions for it appear below."));
    next.className = 'help';
  }
  // Only ever used if the reporter knowingly chooses the server's encryption.
  form.method = 'post';
  form.action = '/submit-plain';
  form.enctype = 'multipart/form-data';
  form.dataset.step = 'details';
}

function controlsOf(wrapper) {
  return wrapper.querySelectorAll('input, select, textarea');
}

function holdsValue(wrapper) {
  return [...controlsOf(wrapper)].some((control) => {
    if (control.type === 'checkbox' || control.type === 'radio') return control.checked;
    return control.value.trim() !== '' || control.validity.badInput; // a number the browser cannot read
  });
}

function offCategoryNote(wrapper, categoryName) {
  let note = wrapper.querySelector('.off-category');
  if (categoryName === null) {
    note?.remove();
    return;
  }
  if (note === null) {
    note = document.createElement('p');
    note.className = 'help off-category';
    wrapper.append(note);
  }
  note.textContent = _("Not asked for “{category}”. What you wrote here will be sent too, unless you clear it.", {
    category: categoryName,
  });
}

/**
 * Show the questions for the category chosen now: a field that does not
 * apply is hidden if it is empty, else kept and marked. Sections with
 * nothing in sight are hidden; with no category, only what holds a value.
 */
export function applyCategory(form) {
  const select = form.elements.namedItem('category');
  const chosen = select.value;
  const chosenName = chosen ? select.selectedOptions[0].textContent.trim() : '';
  for (const wrapper of form.querySelectorAll('.field[data-categories]')) {
    if (wrapper.dataset.field === 'category') continue;
    // An empty list: a question for every kind of incident (templates/_field.html).
    const { categories } = wrapper.dataset;
    const applies = chosen !== '' && (categories === '' || categories.split(' ').includes(chosen));
    const held = holdsValue(wrapper);
    wrapper.hidden = !applies && !held;
    offCategoryNote(wrapper, !applies && held && chosen ? chosenName : null);
  }
  // A section shows when one of its questions does (the attachments go with the narrative's).
  for (const section of form.querySelectorAll('fieldset.section')) {
    section.hidden = section.querySelector('.field[data-categories]:not([hidden])') === null;
  }
  for (const element of form.querySelectorAll('#content-rule, .send')) element.hidden = chosen === '';
  const hint = form.querySelector('#next-step');
  if (hint) hint.hidden = chosen !== '';
}

/** What the form would post for the report's fields: {name: [strings]}. */
export function formValues(form) {
  const values = {};
  for (const control of form.elements) {
    if (!control.name || KEYS.has(control.name) || control.type === 'button' || control.type === 'submit') continue;
    const list = (values[control.name] ??= []);
    if (control.type === 'checkbox' || control.type === 'radio') {
      if (control.checked) list.push(control.value);
    } else {
      list.push(control.value);
    }
  }
  return values;
}

/** Number fields whose text the browser could not read (their value is then ""). */
export function unreadableNumbers(form) {
  return [...form.querySelectorAll('input[type=number]')].filter((input) => input.validity.badInput);
}

/** The element to focus for a problem with `field` (null: the content rule). */
function focusTarget(form, field) {
  if (field === null) return form.querySelector('#f-narrative');
  const control = form.querySelector(`#f-${CSS.escape(field)}`);
  return control?.matches('fieldset') ? control.querySelector('input') : control;
}

/** Remove every mark of an earlier check. */
export function clearProblems(form) {
  for (const wrapper of form.querySelectorAll('.has-error')) wrapper.classList.remove('has-error');
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  for (const slot of form.querySelectorAll('.field-error')) slot.textContent = '';
}

/** Once the reporter changes a marked field, its mark goes (the next send checks it again). */
export function clearProblemOf(form, control) {
  const wrapper = control.closest?.('.field[data-field]');
  const rule = form.querySelector('#content-rule.has-error');
  if (rule && wrapper?.dataset.field !== 'category') {
    rule.classList.remove('has-error'); // something was typed: the content rule may be met now
    const narrative = form.querySelector('.field[data-field="narrative"]');
    if (!narrative?.classList.contains('has-error')) form.querySelector('#error-narrative').textContent = '';
  }
  if (!wrapper?.classList.contains('has-error')) return;
  wrapper.classList.remove('has-error');
  const name = wrapper.dataset.field;
  form.querySelector(`#f-${CSS.escape(name)}`)?.removeAttribute('aria-invalid');
  const slot = form.querySelector(`#error-${CSS.escape(name)}`);
  if (slot) slot.textContent = '';
}

/**
 * Mark each problem ({field, message}) beside its field, the content rule
 * on the rule itself, and move focus to the first in the order of the form.
 * Returns the number of problems marked.
 */
export function showProblems(form, problems) {
  clearProblems(form);
  const targets = [];
  for (const { field, message } of problems) {
    const target = focusTarget(form, field);
    if (target) targets.push(target);
    if (field === null) {
      form.querySelector('#content-rule')?.classList.add('has-error');
      const slot = form.querySelector('#error-narrative');
      if (slot) slot.textContent = message;
      continue;
    }
    const wrapper = form.querySelector(`.field[data-field="${CSS.escape(field)}"]`);
    if (wrapper) {
      wrapper.hidden = false;
      wrapper.closest('fieldset.section')?.removeAttribute('hidden');
      wrapper.classList.add('has-error');
    }
    const slot = form.querySelector(`#error-${CSS.escape(field)}`);
    if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    const control = form.querySelector(`#f-${CSS.escape(field)}`);
    control?.setAttribute('aria-invalid', 'true');
  }
  targets.sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
  targets[0]?.focus();
  return problems.length;
}

/** While sending, nothing can be changed; afterwards, everything is as it was. */
export function setBusy(form, busy) {
  for (const part of form.querySelectorAll('fieldset.section')) part.disabled = busy;
  form.elements.namedItem('category').disabled = busy;
  const send = form.querySelector('#send');
  if (send) {
    send.disabled = busy;
    send.setAttribute('aria-disabled', String(busy));
  }
}
