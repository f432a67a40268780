"""``python -m provtui.testing.fault_server --port P --bearer-token T``: see the package."""

from provtui.testing.fault_server.server import main

raise SystemExit(main())
