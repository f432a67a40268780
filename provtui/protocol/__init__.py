"""The provtui protocol: JSON-RPC 2.0 over HTTP/1.1 on a Unix socket, between the server and its clients."""
