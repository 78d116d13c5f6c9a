"""``python -m fwstudy``: Ctrl-C even while the command line is still importing is one line."""

import sys

try:
    from fwstudy.cli import main
except KeyboardInterrupt:
    print("fwstudy: interrupted (SIGINT)", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
