"""The web portal: server-rendered pages (Jinja2) for patients, served by the same process
at ``/`` beside the API under ``/v1``. Pages call the application services as the API's
routers do (same permissions, access-log rows, booking caps and budgets) and work without
JavaScript; the browser's session is a cookie bound to one of the API's session rows."""
