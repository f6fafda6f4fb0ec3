// New-mail notifications and the installable app, on every signed-in page.
//
// - Registers the service worker (/sw.js: the app shell offline, and pushed notifications).
// - The "Turn on notifications" control on the Preferences page: the browser is asked for
//   permission only when that button is pressed, never otherwise.
// - Keeps this browser's push subscription known to the server: signing out deletes it there,
//   so after signing in again (or when the browser renews it) it is sent once more.
// - window.webpopNotify(title, body): the open inbox's notice of new mail (static/js/mail.js),
//   shown when notifications are on here but Web Push is not (no server key, or no push service).
(function () {
  "use strict";
  const script = document.currentScript;
  const STATE = "webpop-notifications"; // localStorage: "push" (Web Push), "tab" (while a tab is open), unset: off
  const SYNCED = "webpop-push-synced"; // sessionStorage: what was last sent to the server from this tab
  const TAG = "webpop-new-mail";
  const swUrl = script.dataset.swUrl;
  const subscribeUrl = script.dataset.subscribeUrl;
  const canNotify = "Notification" in window && window.isSecureContext;
  const canPush = canNotify && "serviceWorker" in navigator && "PushManager" in window;

  function state() {
    try { return localStorage.getItem(STATE); } catch (e) { return null; }
  }
  function setState(value) {
    try {
      if (value) localStorage.setItem(STATE, value); else localStorage.removeItem(STATE);
    } catch (e) { /* private mode: the state lives as long as the page */ }
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, fields) {
    const body = new FormData();
    Object.keys(fields).forEach(function (name) { body.append(name, fields[name]); });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
    });
  }

  function keyBytes(base64url) {
    const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
    return Uint8Array.from(text, function (c) { return c.charCodeAt(0); });
  }
  function keyText(buffer) {
    if (!buffer) return "";
    return btoa(String.fromCharCode.apply(null, new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  let registration = null;
  async function register() {
    if (!("serviceWorker" in navigator) || !swUrl) return null;
    if (!registration) registration = await navigator.serviceWorker.register(swUrl, { scope: "/" });
    return registration;
  }

  // Sends this browser's subscription to the server. Answers "push", "tab" (push is off on the
  // server) or throws. A subscription made with another server key is replaced.
  async function sendSubscription(subscription, fresh) {
    const json = subscription.toJSON();
    const response = await post(subscribeUrl, {
      endpoint: subscription.endpoint,
      p256dh: (json.keys && json.keys.p256dh) || "",
      auth: (json.keys && json.keys.auth) || "",
      key: keyText(subscription.options && subscription.options.applicationServerKey),
    });
    const answer = await response.json().catch(function () { return {}; });
    if (response.ok) return "push";
    if (!answer.key) {
      await subscription.unsubscribe().catch(function () {});
      return "tab";
    }
    if (response.status === 409 && !fresh) {
      await subscription.unsubscribe();
      return subscribeWith(answer.key);
    }
    throw new Error(answer.error || "subscribing failed (" + response.status + ")");
  }

  async function subscribeWith(serverKey) {
    const reg = await register();
    await navigator.serviceWorker.ready;
    const subscription = await reg.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: keyBytes(serverKey),
    });
    return sendSubscription(subscription, true);
  }

  function cookieMarker(subscription) {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return (match ? match[1] : "") + " " + subscription.endpoint;
  }

  // After signing in again, or when the browser renewed the subscription: send it once per change.
  async function resync(always) {
    if (state() !== "push" || !canPush || Notification.permission !== "granted") return;
    const reg = await register();
    const subscription = reg && await reg.pushManager.getSubscription();
    if (!subscription) { setState("tab"); return; }
    let synced = null;
    try { synced = sessionStorage.getItem(SYNCED); } catch (e) { /* none */ }
    if (!always && synced === cookieMarker(subscription)) return;
    setState(await sendSubscription(subscription, false));
    try { sessionStorage.setItem(SYNCED, cookieMarker(subscription)); } catch (e) { /* none */ }
  }

  window.webpopNotify = async function (title, body) {
    if (state() !== "tab" || !canNotify || Notification.permission !== "granted") return;
    // The worker every signed-in page registers; a page that has just loaded may still be registering
    // it, so wait for it a moment (phone browsers show notifications only through a worker).
    const reg = "serviceWorker" in navigator ? await Promise.race([
      navigator.serviceWorker.ready,
      new Promise(function (resolve) { setTimeout(resolve, 5000, null); }),
    ]) : null;
    const options = { body: body, tag: TAG, renotify: true, dir: "auto", icon: script.dataset.icon };
    if (reg) reg.showNotification(title, options); else new Notification(title, options);
  };

  // --- The control on the Preferences page ---
  const control = document.getElementById("push-control");
  const status = control && document.getElementById("push-status");
  const enable = control && document.getElementById("push-enable");
  const disable = control && document.getElementById("push-disable");

  function show(textName, on) {
    if (!control) return;
    status.textContent = control.dataset[textName];
    control.dataset.state = textName;
    enable.hidden = on !== false;
    disable.hidden = on !== true;
  }

  function showCurrent() {
    if (!control) return;
    if (!canNotify) show(window.isSecureContext ? "textUnsupported" : "textInsecure", null);
    else if (Notification.permission === "denied") show("textDenied", null);
    else if (Notification.permission === "granted" && state() === "push") show("textPush", true);
    else if (Notification.permission === "granted" && state() === "tab") {
      show(control.dataset.serverKey && canPush ? "textTabNoPush" : "textTab", true);
    } else show("textOff", false);
  }

  async function turnOn() {
    enable.disabled = true;
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") { showCurrent(); return; }
      setState("tab");
      if (canPush && control.dataset.serverKey) {
        try {
          setState(await subscribeWith(control.dataset.serverKey));
        } catch (error) {
          console.warn("webpop: Web Push is not available in this browser:", error);
        }
      } else {
        await register();
      }
      showCurrent();
    } finally {
      enable.disabled = false;
    }
  }

  async function turnOff() {
    disable.disabled = true;
    try {
      const reg = canPush ? await navigator.serviceWorker.getRegistration() : null;
      const subscription = reg && await reg.pushManager.getSubscription();
      if (subscription) {
        await post(control.dataset.unsubscribeUrl, { endpoint: subscription.endpoint });
        await subscription.unsubscribe();
      }
      setState(null);
      showCurrent();
    } finally {
      disable.disabled = false;
    }
  }

  if (control) {
    enable.addEventListener("click", turnOn);
    disable.addEventListener("click", turnOff);
    showCurrent();
  }

  window.addEventListener("load", function () {
    register()
      .then(function () { return resync(!!control); })
      .then(showCurrent)
      .catch(function (error) { console.warn("webpop: service worker:", error); });
  });
})();
