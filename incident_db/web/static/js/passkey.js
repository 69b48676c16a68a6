// Passkeys for the members' service, on the browser's WebAuthn API.
//
// A button with data-passkey="create" (make a passkey) or "sign-in" names two
// endpoints: data-options (the server's options, as JSON) and data-verify
// (where the browser's answer goes). Every POST carries the page's CSRF
// token in the X-CSRFToken header. Binary fields travel as base64url, the
// form py_webauthn reads and writes. No third-party code.

const STATUS = "passkey-status";

/** base64url text (no padding) of an ArrayBuffer or view. */
export function toBase64url(buffer) {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer)
    : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of base64url text (padding optional). */
export function fromBase64url(text) {
  const plain = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = plain + "=".repeat((4 - (plain.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function descriptors(list) {
  return (list || []).map((item) => ({ ...item, id: fromBase64url(item.id) }));
}

/** The options of navigator.credentials.create() from the server's JSON. */
export function creationOptions(json) {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

/** The options of navigator.credentials.get() from the server's JSON. */
export function requestOptions(json) {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    allowCredentials: descriptors(json.allowCredentials),
  };
}

function common(credential) {
  const shown = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
  if (credential.authenticatorAttachment) {
    shown.authenticatorAttachment = credential.authenticatorAttachment;
  }
  return shown;
}

/** A new credential as JSON for the server. */
export function registrationJSON(credential) {
  const answer = credential.response;
  return {
    ...common(credential),
    response: {
      clientDataJSON: toBase64url(answer.clientDataJSON),
      attestationObject: toBase64url(answer.attestationObject),
      transports: typeof answer.getTransports === "function" ? answer.getTransports() : [],
    },
  };
}

/** A sign-in assertion as JSON for the server. */
export function authenticationJSON(credential) {
  const answer = credential.response;
  return {
    ...common(credential),
    response: {
      clientDataJSON: toBase64url(answer.clientDataJSON),
      authenticatorData: toBase64url(answer.authenticatorData),
      signature: toBase64url(answer.signature),
      userHandle: answer.userHandle ? toBase64url(answer.userHandle) : null,
    },
  };
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) {
    throw new Error(data.error || `The server refused (${response.status}). Please reload the page.`);
  }
  return data;
}

function say(text) {
  const status = document.getElementById(STATUS);
  if (status) status.textContent = text;
}

function showCodes(codes) {
  const list = document.getElementById("recovery-code-list");
  const section = document.getElementById("recovery-codes");
  if (!list || !section) return false;
  list.replaceChildren(...codes.map((code) => {
    const item = document.createElement("li");
    const text = document.createElement("code");
    text.textContent = code;
    item.append(text);
    return item;
  }));
  const enrol = document.getElementById("enrol");
  if (enrol) enrol.hidden = true;
  section.hidden = false;
  document.getElementById("codes-title")?.focus();
  return true;
}

async function create(button) {
  const options = await post(button.dataset.options);
  say("Follow your device's prompt to create the passkey…");
  const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
  const result = await post(button.dataset.verify, registrationJSON(credential));
  if (Array.isArray(result.recovery_codes) && showCodes(result.recovery_codes)) {
    say("Your passkey is saved and you are signed in.");
    return;
  }
  say("Your passkey is saved.");
  window.location.assign(result.next || "/");
}

async function signIn(button) {
  const options = await post(button.dataset.options);
  say("Follow your device's prompt to sign in…");
  const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
  const result = await post(button.dataset.verify, authenticationJSON(credential));
  say("Signed in.");
  window.location.assign(result.next || "/");
}

function wire(button) {
  button.addEventListener("click", async () => {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser cannot use passkeys. Try a current browser, or a recovery code.");
      return;
    }
    button.disabled = true;
    try {
      await (button.dataset.passkey === "sign-in" ? signIn(button) : create(button));
    } catch (error) {
      const cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
      say(cancelled ? "The passkey prompt was closed or timed out. Please try again."
        : (error && error.message) || "Something went wrong. Please try again.");
    } finally {
      button.disabled = false;
    }
  });
}

if (typeof document !== "undefined") {
  for (const button of document.querySelectorAll("[data-passkey]")) wire(button);
}
