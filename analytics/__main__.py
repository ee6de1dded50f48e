"""``python -m analytics``: the perstack-audit command."""

from analytics.cli import main

raise SystemExit(main())
