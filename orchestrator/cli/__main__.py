"""`python -m orchestrator.cli`, as the `llamadeploy` script."""

import sys

from orchestrator.cli.app import main

sys.exit(main())
