from provtui.cli.main import main

raise SystemExit(main())
