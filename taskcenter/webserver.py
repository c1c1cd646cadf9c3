"""One web process: waitress serving taskcenter on a listening socket it inherited.

`serve` binds the HTTP port once and starts several of these with the socket's file
descriptor (`--fd`): they all accept from the same socket, so the kernel's single queue of
new connections goes to whichever process is free, and a process that dies (and is
restarted) loses no connection that was still waiting. Several processes because one
Python process runs Django on one core at a time (the GIL), whatever its thread count.

Run alone (`python -m taskcenter.webserver --listen HOST:PORT`) it binds the port itself:
the "Scaling out" command of docs/production.md.

Why waitress: no reverse proxy stands in front of the one-command setup, so the server
itself must cope with slow or stalled clients. Waitress reads each request completely
(headers and body, a large body spilled to a temporary file) in its asynchronous I/O loop
before a worker thread sees it, so a client that sends half a request holds a socket,
never a thread: the threads only run Django. Connections silent for `channel_timeout`
seconds are closed. poll() instead of select() lifts select's limit of 1024 descriptors,
and `connection_limit` (waitress's default is 100, after which it stops accepting) leaves
room for hundreds of open connections, idle log tails included.
"""

from __future__ import annotations

import argparse
import os
import socket

# Database connections kept across requests (per thread) unless configured otherwise:
# opening one per request costs PostgreSQL a new backend process each time, which under
# hundreds of polls a second costs more than the requests themselves. The health check
# (conn_health_checks) replaces a connection that broke, after a database restart say.
DEFAULT_DB_CONN_MAX_AGE = "60"
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT = 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m taskcenter.webserver")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="a listening TCP socket's file descriptor")
    where.add_argument("--listen", help="HOST:PORT to bind (one process)")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    os.environ.setdefault("DB_CONN_MAX_AGE", DEFAULT_DB_CONN_MAX_AGE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

    import waitress  # type: ignore[import-untyped]

    from taskcenter.wsgi import application

    options = {
        "threads": args.threads,
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": CHANNEL_TIMEOUT,
        "asyncore_use_poll": True,
        "ident": "waitress",
    }
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
        waitress.serve(application, sockets=[sock], **options)
    else:
        waitress.serve(application, listen=args.listen, **options)


if __name__ == "__main__":
    main()
