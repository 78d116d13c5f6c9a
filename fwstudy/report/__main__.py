"""``python -m fwstudy.report --profile P``: what ``make report`` runs."""

import sys

from fwstudy.report.build import main

sys.exit(main())
