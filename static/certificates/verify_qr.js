// The QR page: check the compact JWS in the URL fragment with WebCrypto Ed25519 against the
// published JWKS, show the signed fields, then fetch the live status from the public API.
// The fragment never reaches a server; only the certificate number is sent, for its status.
// No library: the JWS is three base64url parts, and Ed25519 is in WebCrypto.
"use strict";

(function () {
  const box = document.getElementById("qr-verdicts");
  const signatureCard = document.getElementById("signature-verdict");
  const signatureText = document.getElementById("signature-text");
  const fieldsList = document.getElementById("signed-fields");
  const statusCard = document.getElementById("status-verdict");
  const statusText = document.getElementById("status-text");
  const statusLink = document.getElementById("status-link");

  const FIELDS = [
    ["num", "Certificate number"],
    ["ven", "Vendor"],
    ["prd", "Product"],
    ["ver", "Version"],
    ["vfr", "Valid from"],
    ["vun", "Valid until"],
    ["aipos", "Actor / profile / option triples in scope"],
    ["scope", "Scope fingerprint"],
  ];

  class Unreadable extends Error {}

  function say(card, textElement, ok, title, message) {
    card.classList.remove("ok", "bad");
    if (ok !== null) card.classList.add(ok ? "ok" : "bad");
    textElement.textContent = "";
    const strong = document.createElement("strong");
    strong.textContent = title;
    textElement.append(strong, ": " + message);
  }

  function base64url(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Unreadable("not base64url");
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    let binary;
    try {
      binary = atob(padded);
    } catch (error) {
      throw new Unreadable("not base64url");
    }
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function json(bytes) {
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      throw new Unreadable("not JSON");
    }
  }

  function parseToken(token) {
    const parts = token.split(".");
    if (parts.length !== 3 || !parts[0] || !parts[1] || !parts[2]) throw new Unreadable("not a JWS");
    const header = json(base64url(parts[0]));
    const payloadBytes = base64url(parts[1]);
    const signature = base64url(parts[2]);
    if (!header || header.alg !== "Ed25519" || typeof header.kid !== "string") {
      throw new Unreadable("not an Ed25519 JWS");
    }
    const signedInput = new TextEncoder().encode(parts[0] + "." + parts[1]);
    return { header, payloadBytes, signature, signedInput };
  }

  // The payload is read only after its signature is checked, as the server does: a changed
  // payload is a bad signature, whatever its bytes now decode to.
  function payloadOf(parsed) {
    const payload = json(parsed.payloadBytes);
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
      throw new Unreadable("payload not an object");
    }
    return payload;
  }

  function showFields(payload) {
    fieldsList.textContent = "";
    for (const [key, label] of FIELDS) {
      if (!(key in payload)) continue;
      const term = document.createElement("dt");
      term.textContent = label;
      const value = document.createElement("dd");
      value.textContent = String(payload[key]);
      value.dataset.field = key;
      fieldsList.append(term, value);
    }
    fieldsList.hidden = false;
  }

  function notTrusted(reason) {
    say(statusCard, statusText, false, "Unknown", "no status: the QR code could not be trusted. " + reason);
  }

  async function showStatus(number) {
    say(statusCard, statusText, null, "Checking", "asking for the current status of " + number + "…");
    const url = box.dataset.statusUrl.replace("NUMBER", encodeURIComponent(number));
    let response;
    let body = null;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" } });
      body = await response.json();
    } catch (error) {
      say(statusCard, statusText, null, "Status not available",
        "the live status could not be fetched (offline?). The signed validity is shown above; " +
        "check the number " + number + " again when online.");
      return;
    }
    if (response.status === 429 || !body.status) {
      say(statusCard, statusText, null, "Status not available", body.detail || "try again later.");
      return;
    }
    say(statusCard, statusText, body.status.ok, body.status.title, body.status.message);
    statusCard.dataset.code = body.status.code;
    if (body.status.number) {
      statusLink.textContent = "";
      const link = document.createElement("a");
      link.href = box.dataset.verifyUrl + encodeURIComponent(body.status.number);
      link.textContent = "Full verification of " + body.status.number;
      statusLink.append(link);
      statusLink.hidden = false;
    }
  }

  // Browsers without Ed25519 in WebCrypto: the server checks the same token instead.
  async function serverFallback(token) {
    say(signatureCard, signatureText, null, "Checking",
      "this browser cannot check Ed25519 signatures itself; asking the server…");
    try {
      const response = await fetch(box.dataset.verifyApiUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ qr: token }),
      });
      const body = await response.json();
      if (!body.status) throw new Error(body.detail || "no verdict");
      const sig = body.signature;
      say(signatureCard, signatureText, sig.ok, sig.ok ? "Valid" : "Not valid",
        sig.message + " (checked by the server: this browser lacks Ed25519 in WebCrypto)");
      signatureCard.dataset.code = sig.code;
      if (body.payload) showFields(body.payload);
      say(statusCard, statusText, body.status.ok, body.status.title, body.status.message);
      statusCard.dataset.code = body.status.code;
    } catch (error) {
      say(signatureCard, signatureText, null, "Not checked",
        "this browser cannot check Ed25519 signatures and the server could not be reached. " +
        "Use the offline verifier (python -m certificates.verify --qr ...).");
    }
  }

  async function verify() {
    let token = window.location.hash.slice(1);
    try {
      token = decodeURIComponent(token).trim();
    } catch (error) {
      token = "";
    }
    if (!token) {
      say(signatureCard, signatureText, false, "Not valid",
        "there is no QR code in this address: scan the code again, or paste its text on the verify page.");
      signatureCard.dataset.code = "malformed";
      notTrusted("");
      return;
    }
    let parsed;
    try {
      parsed = parseToken(token);
    } catch (error) {
      if (!(error instanceof Unreadable)) throw error;
      say(signatureCard, signatureText, false, "Not valid",
        "the code does not contain a readable signed payload (unreadable QR code).");
      signatureCard.dataset.code = "malformed";
      notTrusted("");
      return;
    }
    if (!(window.crypto && window.crypto.subtle)) {
      await serverFallback(token);
      return;
    }
    let jwks;
    try {
      const response = await fetch(box.dataset.jwksUrl, { headers: { Accept: "application/json" } });
      jwks = await response.json();
    } catch (error) {
      say(signatureCard, signatureText, null, "Not checked",
        "the published keys could not be fetched; try again, or use the offline verifier.");
      notTrusted("");
      return;
    }
    const jwk = (jwks.keys || []).find((k) => k && k.kid === parsed.header.kid);
    if (!jwk) {
      say(signatureCard, signatureText, false, "Not valid",
        "the code was signed with an unknown key (" + parsed.header.kid + "), not one the scheme " +
        "publishes: the key was revoked or retired with its certificates, or the code is forged.");
      signatureCard.dataset.code = "unknown_key";
      notTrusted("Check the certificate number on the verify page.");
      return;
    }
    let key;
    try {
      key = await crypto.subtle.importKey(
        "jwk",
        { kty: "OKP", crv: "Ed25519", x: jwk.x },
        { name: "Ed25519" },
        false,
        ["verify"],
      );
    } catch (error) {
      if (error && error.name === "NotSupportedError") {
        await serverFallback(token);
        return;
      }
      say(signatureCard, signatureText, false, "Not valid",
        "the published key " + parsed.header.kid + " cannot be used to check the signature.");
      signatureCard.dataset.code = "bad_signature";
      notTrusted("");
      return;
    }
    const ok = await crypto.subtle.verify("Ed25519", key, parsed.signature, parsed.signedInput);
    if (!ok) {
      say(signatureCard, signatureText, false, "Not valid",
        "the signature does not match the payload: the code was altered or forged (bad signature).");
      signatureCard.dataset.code = "bad_signature";
      notTrusted("");
      return;
    }
    let payload;
    try {
      payload = payloadOf(parsed);
    } catch (error) {
      say(signatureCard, signatureText, false, "Not valid",
        "the signed payload is not a JSON object (malformed QR code).");
      signatureCard.dataset.code = "malformed";
      notTrusted("");
      return;
    }
    showFields(payload);
    say(signatureCard, signatureText, true, "Valid",
      "the QR code's signed payload is intact, signed with the published key " +
      parsed.header.kid + " (checked in this browser).");
    signatureCard.dataset.code = "valid";
    await showStatus(String(payload.num || ""));
  }

  verify().catch(function () {
    say(signatureCard, signatureText, null, "Not checked", "something went wrong in this page; use the verify page.");
  });
})();
