"""Start the embedded Kafka-protocol broker (Tansu) for development: ``python kafka/embedded.py --port 9092``.

The implementation lives in ``shared_events.embedded_broker`` so tests and
``make run`` start it the same way.
"""

import sys

from shared_events.embedded_broker import main

if __name__ == "__main__":
    sys.exit(main())
