"""Requests to the production front (Caddy, deploy/local.py) on its loopback ports, as a browser sends
them: the site's name in SNI and Host, its certificate checked against the test CA."""

from __future__ import annotations

import http.client
import socket
import ssl

from deploy import local


def fetch(deployment: local.Deployment, path: str, host: str = local.HOST, https: bool = True
          ) -> tuple[http.client.HTTPResponse, bytes]:
    if https:
        context = ssl.create_default_context(cafile=str(deployment.ca))
        conn = http.client.HTTPSConnection(host, deployment.https_port, context=context, timeout=10)
        conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", deployment.https_port), 10),
                                        server_hostname=host)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", deployment.http_port, timeout=10)
    conn.request("GET", path, headers={"Host": host})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body
