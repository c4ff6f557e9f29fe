"""gunicorn's settings for the portal. gunicorn reads this file from the folder it is
started in (`make run`, bench/server.py, the deployment in docs/deploy.md).

A proxy in front is trusted only through the portal's own setting, TRUSTED_PROXY_COUNT
(Werkzeug's ProxyFix in app.py), never by gunicorn on its own: by default gunicorn
believes X-Forwarded-Proto and its kin from 127.0.0.1, so any process on the host, or a
proxy that passes the client's header through, could make a plain HTTP request look
secure (and the portal would answer it with HSTS and Secure cookies).
"""
forwarded_allow_ips = ""
