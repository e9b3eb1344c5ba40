/* Notifications on this device, for the "How we contact you" page (/preferences).
 *
 * Without this script the page works as a plain form and says that notifications need
 * JavaScript. With it, and a browser that can receive pushes, the notifications switch
 * appears; saving the form with it on registers the service worker (/sw.js), subscribes
 * with the centre's key (the form's data-public-key) and sends the subscription with the
 * form. If the browser refuses, the form is sent without it and the page says what to do.
 */
(function () {
  "use strict";
  var form = document.getElementById("preferences-form");
  if (!form) {
    return;
  }
  var needsScript = document.getElementById("push-needs-js");
  var unsupported = document.getElementById("push-unsupported");
  var control = document.getElementById("push-switch");
  needsScript.hidden = true;
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !window.isSecureContext) {
    unsupported.hidden = false;
    return;
  }
  var fields = ["push", "push_control", "push_endpoint", "push_p256dh", "push_auth"];
  fields.forEach(function (id) {
    document.getElementById(id).disabled = false;
  });
  control.hidden = false;
  var box = document.getElementById("push");
  var sending = false;

  function bytesOf(base64url) {
    var padded = base64url.replace(/-/g, "+").replace(/_/g, "/");
    padded += "===".slice((padded.length + 3) % 4);
    var text = window.atob(padded);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i += 1) {
      bytes[i] = text.charCodeAt(i);
    }
    return bytes;
  }

  function subscribe() {
    return navigator.serviceWorker
      .register("/sw.js")
      .then(function () {
        return navigator.serviceWorker.ready;
      })
      .then(function (registration) {
        return registration.pushManager.getSubscription().then(function (existing) {
          return (
            existing ||
            registration.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey: bytesOf(form.getAttribute("data-public-key")),
            })
          );
        });
      });
  }

  form.addEventListener("submit", function (event) {
    if (sending || !box.checked) {
      return;
    }
    event.preventDefault();
    sending = true;
    subscribe()
      .then(function (subscription) {
        var json = subscription.toJSON();
        document.getElementById("push_endpoint").value = json.endpoint;
        document.getElementById("push_p256dh").value = json.keys.p256dh;
        document.getElementById("push_auth").value = json.keys.auth;
      })
      .catch(function () {
        /* Refused or unavailable: the form goes without it, and the page explains. */
      })
      .then(function () {
        form.submit();
      });
  });
})();
