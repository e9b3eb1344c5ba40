/* The portal's service worker (served as /sw.js): shows the notifications the centre
 * pushes ({kind, title, body, url}: never anything clinical) and opens the portal page a
 * notification links to when it is tapped, on this site only. */
"use strict";

self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "Imaging Bridge", {
      body: data.body || "",
      tag: data.kind || undefined,
      data: { url: data.url || "/" },
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var link = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  var target = new URL(link.pathname + link.search, self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i += 1) {
        if (windows[i].url === target && "focus" in windows[i]) {
          return windows[i].focus();
        }
      }
      return self.clients.openWindow(target);
    })
  );
});
