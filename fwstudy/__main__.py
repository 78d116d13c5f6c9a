from fwstudy.cli import main

raise SystemExit(main())
