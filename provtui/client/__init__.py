"""The client side of the provtui server: a Service whose calls go over the server's Unix socket."""
