import sys

from mlops_cli.main import main

sys.exit(main())
