"""``python -m tao_results_demo``: the demo (``make demo``); ``--help`` for its options."""

import sys

from tao_results_demo.demo import main

if __name__ == "__main__":
    sys.exit(main())
