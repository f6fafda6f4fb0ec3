// Served at /sw.js by push.views.service_worker, after SHELL, OFFLINE_URL, ICON and CACHE.
//
// Keeps the app shell (our CSS, scripts, icons and an offline page) for use without a network;
// never mail, pages or API answers. Shows new-mail notifications pushed while webpop is closed
// and opens webpop when one is clicked.
"use strict";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil((async function () {
    for (const name of await caches.keys()) {
      if (name.startsWith("webpop-shell-") && name !== CACHE) await caches.delete(name);
    }
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable();
  })());
});

async function page(event) {
  try {
    const preloaded = await event.preloadResponse;
    return preloaded || await fetch(event.request);
  } catch (error) {
    // No network: the offline page, which holds nothing of anyone's.
    return (await caches.match(OFFLINE_URL, { cacheName: CACHE })) || Response.error();
  }
}

async function shellFile(request) {
  // The network first, so a new version is used as soon as it is there; the copy when offline.
  try {
    const response = await fetch(request);
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then(function (cache) { return cache.put(request, copy); });
    }
    return response;
  } catch (error) {
    return (await caches.match(request, { cacheName: CACHE })) || Response.error();
  }
}

self.addEventListener("fetch", function (event) {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && request.destination === "document") {
    event.respondWith(page(event));
  } else if (SHELL.includes(url.pathname) && url.pathname !== OFFLINE_URL) {
    event.respondWith(shellFile(request));
  }
  // Everything else (mail, attachments, API answers) goes to the network untouched and is never kept.
});

function sameOriginPath(value) {
  try {
    const url = new URL(value || "/", self.location.origin);
    return url.origin === self.location.origin ? url.href : new URL("/", self.location.origin).href;
  } catch (error) {
    return new URL("/", self.location.origin).href;
  }
}

self.addEventListener("push", function (event) {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  const shown = self.registration.showNotification(String(data.title || "webpop"), {
    body: String(data.body || ""),
    tag: String(data.tag || "webpop-new-mail"),
    renotify: true,
    icon: ICON,
    dir: "auto",
    data: { url: sameOriginPath(data.url) },
  });
  const badge = self.navigator.setAppBadge && Number.isInteger(data.unread)
    ? self.navigator.setAppBadge(data.unread).catch(function () {})
    : Promise.resolve();
  event.waitUntil(Promise.all([shown, badge]));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  const target = sameOriginPath(event.notification.data && event.notification.data.url);
  const inbox = new URL("/", self.location.origin).href;
  event.waitUntil((async function () {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    // A window already showing it; for the inbox, any webpop window (it notices new mail itself).
    // Never navigate a window away: it may hold a message being written.
    const open = windows.find(function (client) { return client.url === target; })
      || (target === inbox ? windows.find(function (client) { return client.url.startsWith(inbox); }) : null);
    if (open) return open.focus();
    return self.clients.openWindow(target);
  })());
});
